"""Mask2Former under autocast (bf16 / fp16): the numerically fragile parts in fp32.

Importing this module patches, once (idempotent), and only what runs under autocast:

1. mmcv's multi-scale deformable attention (Mask2Former's pixel decoder). Under
   autocast its ``value`` arrives in fp16/bf16 and mmcv casts the sampling locations
   and attention weights down to it before the CUDA kernel: the kernel has no bf16
   implementation (mmcv issue #2878: bf16 fails), fp16 sampling locations lose
   precision (1/1024 of the map) and fp16 gradients are accumulated with half-precision
   atomics (overflow / NaN reports). Here the sampling runs in fp32 with autocast off
   and the output is cast back to ``value``'s dtype (a convex combination of values:
   it cannot overflow that dtype). Patched: the names
   ``MultiScaleDeformableAttnFunction`` and ``multi_scale_deformable_attn_pytorch`` in
   ``mmcv.ops.multi_scale_deform_attn``, which ``MultiScaleDeformableAttention.forward``
   looks up when it runs (CUDA kernel on GPU, PyTorch reference path on CPU; on a GPU
   whose mmcv has no CUDA kernels the PyTorch path too, see ``ops_routing``). The
   module class, its parameters and its state dict are untouched.
2. Mask2Former's loss (``MaskFormerHead.loss_by_feat`` of mmdet, which mmseg's head
   inherits): Hungarian matching costs and point-sampled mask/dice losses in fp32
   with autocast off, as the official implementation does for its matcher. The
   matcher's mask cost sums binary cross-entropy over 12,544 points; in fp16 that
   sum can pass 65,504 (inf cost -> scipy refuses the assignment).

In fp32 training both are no-ops (``.float()`` of an fp32 tensor is itself).
"""
from __future__ import annotations

import functools
import importlib

import torch

_MSDA = 'mmcv.ops.multi_scale_deform_attn'
_ORIG = {}


def _disable_dynamo(fn):
    disable = getattr(getattr(torch, 'compiler', None), 'disable', None)
    return disable(fn) if disable else fn


def _fp32(t):
    return t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t


def _no_autocast(device_type: str):
    return torch.autocast(device_type=device_type, enabled=False)


class Fp32MultiScaleDeformableAttnFunction:
    """Drop-in for mmcv's ``MultiScaleDeformableAttnFunction`` (only ``apply`` is
    used; mmcv calls it for CUDA tensors): runs mmcv's kernel in fp32 where it runs on
    this device, else mmcv's PyTorch path in fp32 (:mod:`.ops_routing`: an mmcv built
    without CUDA kernels); returns ``value``'s dtype."""
    _segkit_amp_safe = True
    _segkit_kernel = None  # mmcv's class (ops_check probes it), set by patch()

    @staticmethod
    @_disable_dynamo
    def apply(value, value_spatial_shapes, value_level_start_index, sampling_locations,
              attention_weights, im2col_step):
        from segkit.plugins.models.ops_routing import use_kernel
        dtype = value.dtype
        with _no_autocast(value.device.type):
            if use_kernel('msda', value.device):
                out = _ORIG['function'].apply(
                    _fp32(value), value_spatial_shapes, value_level_start_index,
                    _fp32(sampling_locations), _fp32(attention_weights), im2col_step)
            else:
                out = _ORIG['pytorch'](_fp32(value), value_spatial_shapes,
                                       _fp32(sampling_locations), _fp32(attention_weights))
        return out.to(dtype)


@_disable_dynamo
def fp32_multi_scale_deformable_attn_pytorch(value, value_spatial_shapes,
                                             sampling_locations, attention_weights):
    """mmcv's PyTorch reference path (CPU) in fp32, output in ``value``'s dtype."""
    dtype = value.dtype
    with _no_autocast(value.device.type):
        out = _ORIG['pytorch'](_fp32(value), value_spatial_shapes,
                               _fp32(sampling_locations), _fp32(attention_weights))
    return out.to(dtype)


fp32_multi_scale_deformable_attn_pytorch._segkit_amp_safe = True


def _fp32_loss_by_feat(orig):
    @functools.wraps(orig)
    def loss_by_feat(self, all_cls_scores, all_mask_preds, *args, **kwargs):
        first = all_cls_scores[0] if isinstance(all_cls_scores, (list, tuple)) \
            else all_cls_scores
        device_type = first.device.type if isinstance(first, torch.Tensor) else 'cpu'

        def cast(x):
            return type(x)(_fp32(t) for t in x) if isinstance(x, (list, tuple)) else _fp32(x)

        with _no_autocast(device_type):
            return orig(self, cast(all_cls_scores), cast(all_mask_preds), *args, **kwargs)

    loss_by_feat._segkit_amp_safe = True
    loss_by_feat._segkit_orig = orig
    return loss_by_feat


def patch() -> None:
    """Apply both patches (again: no-op)."""
    msda = importlib.import_module(_MSDA)
    if not getattr(msda.MultiScaleDeformableAttnFunction, '_segkit_amp_safe', False):
        _ORIG['function'] = msda.MultiScaleDeformableAttnFunction
        Fp32MultiScaleDeformableAttnFunction._segkit_kernel = _ORIG['function']
        msda.MultiScaleDeformableAttnFunction = Fp32MultiScaleDeformableAttnFunction
    if not getattr(msda.multi_scale_deformable_attn_pytorch, '_segkit_amp_safe', False):
        _ORIG['pytorch'] = msda.multi_scale_deformable_attn_pytorch
        fp32_multi_scale_deformable_attn_pytorch._segkit_orig = _ORIG['pytorch']
        msda.multi_scale_deformable_attn_pytorch = fp32_multi_scale_deformable_attn_pytorch
    try:
        from mmdet.models.dense_heads.maskformer_head import MaskFormerHead
    except ImportError:  # mmdet absent: no Mask2Former either
        return
    if not getattr(MaskFormerHead.loss_by_feat, '_segkit_amp_safe', False):
        MaskFormerHead.loss_by_feat = _fp32_loss_by_feat(MaskFormerHead.loss_by_feat)


def unpatch() -> None:
    """Restore mmcv's and mmdet's originals (tests)."""
    msda = importlib.import_module(_MSDA)
    if 'function' in _ORIG:
        msda.MultiScaleDeformableAttnFunction = _ORIG.pop('function')
    if 'pytorch' in _ORIG:
        msda.multi_scale_deformable_attn_pytorch = _ORIG.pop('pytorch')
    try:
        from mmdet.models.dense_heads.maskformer_head import MaskFormerHead
    except ImportError:
        return
    orig = getattr(MaskFormerHead.loss_by_feat, '_segkit_orig', None)
    if orig is not None:
        MaskFormerHead.loss_by_feat = orig


def is_patched() -> bool:
    msda = importlib.import_module(_MSDA)
    return bool(getattr(msda.MultiScaleDeformableAttnFunction, '_segkit_amp_safe', False)
                and getattr(msda.multi_scale_deformable_attn_pytorch, '_segkit_amp_safe',
                            False))


patch()
