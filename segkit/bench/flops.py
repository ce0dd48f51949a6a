"""Model FLOPs per image, counted by PyTorch's ``FlopCounterMode`` at the dispatcher:
matrix products (mm/bmm, convolutions and their backward, scaled-dot-product
attention), nothing elementwise. One multiply-add = 2 FLOPs (2x the "GFLOPs" tables
that count MACs: SegFormer's paper, mmengine's ``get_model_complexity_info``).

``forward``: one image through backbone + neck + decode head (``mode='tensor'``).
``train``: one real forward + loss + backward, counted (~3x forward; Mask2Former's
loss adds a little). Unseen: mmcv's compiled ops and grid_sample (Mask2Former's
deformable attention, bilinear sampling: a small share).
"""
from __future__ import annotations

import copy

import torch

FLOPS_METHOD = ('torch.utils.flop_counter.FlopCounterMode (matmul/conv/SDPA FLOPs, '
                '1 multiply-add = 2 FLOPs; elementwise ops and mmcv CUDA ops not counted)')


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding,
                        _dilation, transposed, _output_padding, _groups, output_mask,
                        out_shape=None, **kwargs) -> int:
    """Backward of a convolution: grad_input and grad_weight each cost what the
    forward costs. (PyTorch's own formula counts grad_weight ``groups`` times too
    often: a depthwise 3x3 conv's backward comes out 65x its forward with 64 groups;
    SegFormer's Mix-FFN is full of them.)"""
    from torch.utils.flop_counter import conv_flop_count
    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape),
                              transposed=bool(transposed))
    return forward * sum(map(bool, output_mask[:2]))


def _flop_counter():
    from torch.utils.flop_counter import FlopCounterMode
    aten = torch.ops.aten
    return FlopCounterMode(display=False,
                           custom_mapping={aten.convolution_backward: _conv_backward_flop})


def count_flops(model, cfg, size=None, device: str = 'cpu', train: bool = True,
                amp=None, batch: dict = None) -> dict:
    """FLOPs per image of ``model`` as is (the backward's gradients are zeroed after),
    at ``size`` (default: the crop), on ``batch`` (one image; default: a synthetic one)."""
    from segkit.engine.fast_paths import autocast_context
    from segkit.bench.synthetic import crop_size_of, num_classes_of, synthetic_batch
    size = tuple(size or crop_size_of(cfg) or (512, 512))
    if batch is None:
        batch = synthetic_batch(num_classes_of(cfg), 1, size, seed=123)
    was_training = model.training
    out = {'method': FLOPS_METHOD, 'size': list(size), 'forward': None, 'train': None}
    try:
        model.train()
        data = model.data_preprocessor(copy.copy(batch), True)
        with _flop_counter() as counter, torch.no_grad(), autocast_context(amp, device):
            _forward(model, data)
        out['forward'] = int(counter.get_total_flops())
        if train:
            data = model.data_preprocessor(copy.copy(batch), True)
            with _flop_counter() as counter:
                with autocast_context(amp, device):
                    loss, _ = model.parse_losses(model(**data, mode='loss'))
                loss.backward()
            model.zero_grad(set_to_none=True)
            out['train'] = int(counter.get_total_flops())
    finally:
        model.train(was_training)
    return out


def _forward(model, data):
    """Backbone + neck + decode head forward (what ``mode='tensor'`` runs; heads like
    Mask2Former's also take the data samples)."""
    import inspect
    x = model.extract_feat(data['inputs'])
    head = model.decode_head
    if 'batch_data_samples' in inspect.signature(head.forward).parameters:
        return head.forward(x, data['data_samples'])
    return head.forward(x)
