"""Kernel or PyTorch path, per op and device: GPU training without mmcv's CUDA kernels.

segkit's configs use two of mmcv's compiled ops on CUDA tensors: Mask2Former's
``MultiScaleDeformableAttention`` and ``sigmoid_focal_loss``; an mmcv built without a
matching nvcc lacks both and stock mmseg fails at the first step. Each call asks
:func:`use_kernel`: the kernel where it runs on this device (probed once per device with
tiny real inputs), else the PyTorch path, with one warning per op and process (none on
CPU, where mmcv 2.1.0 has neither kernel and the PyTorch path is the normal one).
``SEGKIT_OPS=pytorch`` / ``kernel`` forces a path everywhere (benchmarks, tests).
"""
from __future__ import annotations

import functools
import importlib
import logging
import os
from collections import namedtuple
from typing import Optional

import torch

from segkit.errors import one_line
from segkit.plugins.models import ops_check

KERNEL, PYTORCH = 'kernel', 'pytorch'
ENV = 'SEGKIT_OPS'
FIX = ('for the kernels: put an nvcc of torch\'s CUDA major first on PATH (and in '
       'CUDA_HOME), then MMCV_REBUILD=1 make install')
# name: as users know it; pytorch: what runs instead; cost: of the PyTorch path on a GPU
Op = namedtuple('Op', 'name pytorch cost')
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
Decision = namedtuple('Decision', 'op device path reason')  # path: KERNEL or PYTORCH
_warned: set = set()


def choose(probe_error: Optional[str], forced: Optional[str] = None) -> str:
    """The routing rule: a forced path wins; else the kernel iff its probe ran."""
    if forced in (KERNEL, PYTORCH):
        return forced
    return KERNEL if probe_error is None else PYTORCH


@functools.lru_cache(maxsize=None)
def _probe(op: str, device: str) -> Optional[str]:
    """None if the compiled kernel of ``op`` runs on ``device``, else why not."""
    try:
        ops_check.PROBES[op](device)
    except Exception as err:  # noqa: BLE001 - any failure means: no usable kernel
        return one_line(err)
    return None


def decide(op: str, device) -> Decision:
    """Which path ``op`` takes on ``device`` (the probe runs once per op and device)."""
    if op not in OPS:
        raise KeyError(f'unknown op {op!r}: one of {", ".join(OPS)}')
    device = torch.device(device)
    key = f'cuda:{torch.cuda.current_device()}' if device.type == 'cuda' and \
        device.index is None else str(device)
    forced = os.environ.get(ENV, 'auto').strip().lower()
    if forced in (KERNEL, PYTORCH):
        return Decision(op, key, forced, f'{ENV}={forced}')
    err = _probe(op, key)
    path = choose(err)
    reason = 'compiled kernel runs' if path == KERNEL else f'no kernel ({err})'
    return Decision(op, key, path, reason)


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
        print_log(warning_text(d), logger='current', level=logging.WARNING)
    return d.path == KERNEL


def paths(device) -> list:
    """One :class:`Decision` per op on ``device`` (doctor's rows)."""
    return [decide(op, device) for op in OPS]


def reset() -> None:
    """Forget probes and warnings (tests)."""
    _probe.cache_clear()
    _warned.clear()


_ORIG = {}


def routed_sigmoid_focal_loss(pred, target, one_hot_target, weight=None, gamma=2.0,
                              alpha=0.5, class_weight=None, valid_mask=None,
                              reduction='mean', avg_factor=None):
    """mmseg's CUDA branch (mmcv's kernel) where the kernel runs, else mmseg's
    ``py_sigmoid_focal_loss`` on the one-hot target mmseg built alongside (same loss)."""
    kwargs = dict(gamma=gamma, alpha=alpha, class_weight=class_weight, valid_mask=valid_mask,
                  reduction=reduction, avg_factor=avg_factor)
    if use_kernel('sigmoid_focal_loss', pred.device):
        return _ORIG['focal'](pred, target, one_hot_target, weight, **kwargs)
    from mmseg.models.losses.focal_loss import py_sigmoid_focal_loss
    if one_hot_target.dim() == 1:  # one class: mmseg passes the foreground column
        one_hot_target = one_hot_target.view(-1, 1)
    return py_sigmoid_focal_loss(pred, one_hot_target, None, weight, **kwargs)


def patch_focal() -> None:
    """Route mmseg's FocalLoss CUDA branch (idempotent; FocalLoss.forward looks the
    name up in its module at call time)."""
    mod = importlib.import_module('mmseg.models.losses.focal_loss')
    if mod.sigmoid_focal_loss is not routed_sigmoid_focal_loss:
        _ORIG['focal'] = mod.sigmoid_focal_loss
        mod.sigmoid_focal_loss = routed_sigmoid_focal_loss


patch_focal()
