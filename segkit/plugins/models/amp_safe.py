"""Mask2Former under autocast (bf16 / fp16): the numerically fragile parts in fp32.

Importing this module patches, once (idempotent), what runs under autocast; in fp32
training both patches are no-ops:

1. mmcv's multi-scale deformable attention (pixel decoder): its CUDA kernel has no bf16
   (mmcv issue #2878), fp16 sampling locations lose precision (1/1024 of the map) and its
   fp16 gradients use half-precision atomics (overflow / NaN). Here the sampling runs in
   fp32 with autocast off and the output is cast back to ``value``'s dtype (a convex
   combination of values cannot overflow it). Patched: the names
   ``MultiScaleDeformableAttnFunction`` and ``multi_scale_deformable_attn_pytorch`` in
   ``mmcv.ops.multi_scale_deform_attn``, which the module looks up when it runs (kernel
   or PyTorch path, see ``ops_routing``); module, parameters and state dict untouched.
2. mmdet's ``MaskFormerHead.loss_by_feat`` (inherited by mmseg's Mask2Former head):
   Hungarian matching costs and point-sampled mask/dice losses in fp32 with autocast off,
   as the official matcher does: its mask cost sums BCE over 12,544 points, which in fp16
   can pass 65,504 (inf cost -> scipy refuses the assignment).
"""
from __future__ import annotations

import functools
import importlib

import torch
from mmdet.models.dense_heads.maskformer_head import MaskFormerHead

_MSDA = 'mmcv.ops.multi_scale_deform_attn'
_ORIG = {}


def _fp32(t):
    return t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t


def _in_fp32(fn, value, *args):
    """``fn`` on fp32 floating tensors with autocast off; the output in ``value``'s dtype."""
    with torch.autocast(device_type=value.device.type, enabled=False):
        out = fn(_fp32(value), *map(_fp32, args))
    return out.to(value.dtype)


class Fp32MultiScaleDeformableAttnFunction:
    """Drop-in for mmcv's ``MultiScaleDeformableAttnFunction`` (mmcv calls its ``apply``
    for CUDA tensors): mmcv's kernel in fp32 where it runs on this device, else mmcv's
    PyTorch path in fp32 (:mod:`.ops_routing`)."""
    _segkit_amp_safe = True
    _segkit_kernel = None  # mmcv's class (ops_check probes it), set by patch()

    @staticmethod
    @torch.compiler.disable
    def apply(value, value_spatial_shapes, value_level_start_index, sampling_locations,
              attention_weights, im2col_step):
        from segkit.plugins.models.ops_routing import use_kernel
        if use_kernel('msda', value.device):
            return _in_fp32(_ORIG['function'].apply, value, value_spatial_shapes,
                            value_level_start_index, sampling_locations, attention_weights,
                            im2col_step)
        return _in_fp32(_ORIG['pytorch'], value, value_spatial_shapes, sampling_locations,
                        attention_weights)


@torch.compiler.disable
def fp32_multi_scale_deformable_attn_pytorch(value, value_spatial_shapes,
                                             sampling_locations, attention_weights):
    """mmcv's PyTorch reference path (CPU) in fp32, output in ``value``'s dtype."""
    return _in_fp32(_ORIG['pytorch'], value, value_spatial_shapes, sampling_locations,
                    attention_weights)


fp32_multi_scale_deformable_attn_pytorch._segkit_amp_safe = True
# (name in mmcv's module, key in _ORIG, replacement)
_MSDA_PATCHES = (('MultiScaleDeformableAttnFunction', 'function',
                  Fp32MultiScaleDeformableAttnFunction),
                 ('multi_scale_deformable_attn_pytorch', 'pytorch',
                  fp32_multi_scale_deformable_attn_pytorch))


def _fp32_loss_by_feat(orig):
    @functools.wraps(orig)
    def loss_by_feat(self, all_cls_scores, all_mask_preds, *args, **kwargs):
        first = all_cls_scores[0] if isinstance(all_cls_scores, (list, tuple)) \
            else all_cls_scores
        device_type = first.device.type if isinstance(first, torch.Tensor) else 'cpu'

        def cast(x):
            return type(x)(_fp32(t) for t in x) if isinstance(x, (list, tuple)) else _fp32(x)

        with torch.autocast(device_type=device_type, enabled=False):
            return orig(self, cast(all_cls_scores), cast(all_mask_preds), *args, **kwargs)

    loss_by_feat._segkit_amp_safe = True
    loss_by_feat._segkit_orig = orig
    return loss_by_feat


def patch() -> None:
    """Apply both patches (again: no-op)."""
    msda = importlib.import_module(_MSDA)
    for name, key, new in _MSDA_PATCHES:
        if not getattr(getattr(msda, name), '_segkit_amp_safe', False):
            _ORIG[key] = getattr(msda, name)
            setattr(msda, name, new)
    Fp32MultiScaleDeformableAttnFunction._segkit_kernel = _ORIG['function']
    fp32_multi_scale_deformable_attn_pytorch._segkit_orig = _ORIG['pytorch']
    if not getattr(MaskFormerHead.loss_by_feat, '_segkit_amp_safe', False):
        MaskFormerHead.loss_by_feat = _fp32_loss_by_feat(MaskFormerHead.loss_by_feat)


def unpatch() -> None:
    """Restore mmcv's and mmdet's originals (tests)."""
    msda = importlib.import_module(_MSDA)
    for name, key, _ in _MSDA_PATCHES:
        if key in _ORIG:
            setattr(msda, name, _ORIG.pop(key))
    MaskFormerHead.loss_by_feat = getattr(MaskFormerHead.loss_by_feat, '_segkit_orig',
                                          MaskFormerHead.loss_by_feat)


def is_patched() -> bool:
    msda = importlib.import_module(_MSDA)
    return all(getattr(getattr(msda, name), '_segkit_amp_safe', False)
               for name, _, _ in _MSDA_PATCHES)


patch()
