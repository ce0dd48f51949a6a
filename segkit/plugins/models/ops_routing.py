"""Kernel or PyTorch path, per op and device: GPU training without mmcv's CUDA kernels.

segkit's configs use two of mmcv's compiled ops on CUDA tensors: Mask2Former's
``MultiScaleDeformableAttention`` (pixel decoder) and ``sigmoid_focal_loss`` (mmseg's
``FocalLoss`` / segkit's ``IgnoreSafeFocalLoss``). An mmcv built without a matching
nvcc has no CUDA kernels for them and stock mmseg then fails at the first step. Here
each call asks :func:`use_kernel`: the kernel when it runs on this device (probed
once per device with real tiny inputs), else the PyTorch path (mmcv's
``multi_scale_deformable_attn_pytorch`` in fp32, mmseg's ``py_sigmoid_focal_loss``),
with one warning per op and process saying which path, its cost and how to get the
kernels. On CPU the PyTorch path is the normal one (mmcv 2.1.0 compiles neither op
for CPU), so no warning there.

``SEGKIT_OPS=pytorch`` forces the PyTorch path everywhere (benchmarks, tests);
``SEGKIT_OPS=kernel`` forces the kernel (fails where it is missing, as stock mmcv does).
"""
from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass
from typing import Optional

import torch

from segkit.plugins.models import ops_check

KERNEL, PYTORCH = 'kernel', 'pytorch'
ENV = 'SEGKIT_OPS'
FIX = ('for the kernels: put an nvcc of torch\'s CUDA major first on PATH (and in '
       'CUDA_HOME), then MMCV_REBUILD=1 make install')


@dataclass(frozen=True)
class Op:
    name: str      # as users know it
    pytorch: str   # what runs instead of the kernel
    cost: str      # expected cost of the PyTorch path on a GPU


OPS = {
    'msda': Op('MultiScaleDeformableAttention (Mask2Former pixel decoder)',
               "mmcv's multi_scale_deformable_attn_pytorch in fp32 (grid_sample)",
               'expected: Mask2Former steps about 10-30% slower and more activation '
               'memory (grid_sample per level and head instead of one fused kernel; '
               'scripts/gpu_check.sh measures it)'),
    'sigmoid_focal_loss': Op('sigmoid_focal_loss (FocalLoss)',
                             "mmseg's py_sigmoid_focal_loss",
                             'expected: negligible (a few elementwise kernels on the logits)'),
}


@dataclass(frozen=True)
class Decision:
    op: str
    device: str
    path: str             # KERNEL or PYTORCH
    reason: str

    def line(self) -> str:
        return f'{self.path}: {self.reason}'


def choose(probe_error: Optional[str], forced: Optional[str] = None) -> str:
    """The routing rule: a forced path wins; else the kernel iff its probe ran."""
    if forced in (KERNEL, PYTORCH):
        return forced
    return KERNEL if probe_error is None else PYTORCH


def forced_path() -> Optional[str]:
    value = os.environ.get(ENV, 'auto').strip().lower()
    return value if value in (KERNEL, PYTORCH) else None


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f'{type(err).__name__}: {text[0] if text else ""}'[:200]


@functools.lru_cache(maxsize=None)
def _probe(op: str, device: str) -> Optional[str]:
    """None if the compiled kernel of ``op`` runs on ``device``, else why not."""
    try:
        ops_check.PROBES[op](device)
    except Exception as err:  # noqa: BLE001 - any failure means: no usable kernel
        return _one_line(err)
    return None


def _device_key(device) -> str:
    device = torch.device(device)
    if device.type == 'cuda' and device.index is None:
        return f'cuda:{torch.cuda.current_device()}'
    return str(device)


def decide(op: str, device) -> Decision:
    """Which path ``op`` takes on ``device`` (the probe runs once per op and device)."""
    if op not in OPS:
        raise KeyError(f'unknown op {op!r}: one of {", ".join(OPS)}')
    key = _device_key(device)
    forced = forced_path()
    if forced:
        return Decision(op, key, forced, f'{ENV}={forced}')
    err = _probe(op, key)
    path = choose(err)
    reason = 'compiled kernel runs' if path == KERNEL else f'no kernel ({err})'
    return Decision(op, key, path, reason)


_warned: set = set()


def warning_text(d: Decision) -> str:
    op = OPS[d.op]
    return (f'segkit: {op.name} on {d.device} takes the PyTorch path ({op.pytorch}): '
            f"mmcv's compiled kernel is not available ({d.reason}). {op.cost}. {FIX}.")


def use_kernel(op: str, device) -> bool:
    """The question each routed call asks; warns once per op when a CUDA tensor
    takes the PyTorch path."""
    d = decide(op, device)
    if d.path == PYTORCH and torch.device(device).type == 'cuda' and op not in _warned:
        _warned.add(op)
        from mmengine.logging import print_log
        import logging
        print_log(warning_text(d), logger='current', level=logging.WARNING)
    return d.path == KERNEL


def paths(device) -> list:
    """One :class:`Decision` per op on ``device`` (doctor's rows)."""
    return [decide(op, device) for op in OPS]


def reset() -> None:
    """Forget probes and warnings (tests)."""
    _probe.cache_clear()
    _warned.clear()


# ---------------------------------------------------------------- focal loss

_FOCAL = 'mmseg.models.losses.focal_loss'
_ORIG = {}


def routed_sigmoid_focal_loss(pred, target, one_hot_target, weight=None, gamma=2.0,
                              alpha=0.5, class_weight=None, valid_mask=None,
                              reduction='mean', avg_factor=None):
    """mmseg's CUDA branch (``sigmoid_focal_loss``: mmcv's kernel) where the kernel
    runs, else mmseg's ``py_sigmoid_focal_loss`` on the one-hot target mmseg built
    alongside (same loss: both are alpha-balanced BCE times (1 - p_t)^gamma)."""
    if use_kernel('sigmoid_focal_loss', pred.device):
        return _ORIG['focal'](pred, target, one_hot_target, weight, gamma=gamma,
                              alpha=alpha, class_weight=class_weight,
                              valid_mask=valid_mask, reduction=reduction,
                              avg_factor=avg_factor)
    from mmseg.models.losses.focal_loss import py_sigmoid_focal_loss
    if one_hot_target.dim() == 1:  # one class: mmseg passes the foreground column
        one_hot_target = one_hot_target.view(-1, 1)
    return py_sigmoid_focal_loss(pred, one_hot_target, None, weight, gamma=gamma,
                                 alpha=alpha, class_weight=class_weight,
                                 valid_mask=valid_mask, reduction=reduction,
                                 avg_factor=avg_factor)


routed_sigmoid_focal_loss._segkit_routed = True


def patch_focal() -> None:
    """Route mmseg's FocalLoss CUDA branch (idempotent; FocalLoss.forward looks the
    name up in its module at call time)."""
    mod = importlib.import_module(_FOCAL)
    if not getattr(mod.sigmoid_focal_loss, '_segkit_routed', False):
        _ORIG['focal'] = mod.sigmoid_focal_loss
        mod.sigmoid_focal_loss = routed_sigmoid_focal_loss


def unpatch_focal() -> None:
    mod = importlib.import_module(_FOCAL)
    if 'focal' in _ORIG:
        mod.sigmoid_focal_loss = _ORIG.pop('focal')


patch_focal()
