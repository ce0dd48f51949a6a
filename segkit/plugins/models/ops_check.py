"""Does mmcv's compiled MultiScaleDeformableAttention kernel run on CUDA?

Imports nothing from segkit, so scripts/install.sh can run this file directly
(``python segkit/plugins/models/ops_check.py``: exit 0 if the kernel runs and matches mmcv's
PyTorch reference) before segkit is installed; ``doctor`` imports it.
"""
import sys


def probe_msda_cuda() -> None:
    """Run the compiled kernel on a tiny CUDA tensor; raise if missing or wrong."""
    import torch
    from mmcv.ops.multi_scale_deform_attn import (
        MultiScaleDeformableAttnFunction, multi_scale_deformable_attn_pytorch)
    shapes = torch.tensor([[4, 4], [2, 2]], device='cuda')
    start = torch.cat((shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]))
    value = torch.rand(1, 20, 2, 8, device='cuda')
    loc = torch.rand(1, 3, 2, 2, 2, 2, device='cuda')
    weights = torch.softmax(torch.rand(1, 3, 2, 4, device='cuda'), -1).view(1, 3, 2, 2, 2)
    out = MultiScaleDeformableAttnFunction.apply(value, shapes, start, loc, weights, 64)
    ref = multi_scale_deformable_attn_pytorch(value, shapes, loc, weights)
    if not torch.allclose(out, ref, atol=1e-4):
        raise RuntimeError('CUDA kernel output differs from the PyTorch reference')


if __name__ == '__main__':
    try:
        probe_msda_cuda()
    except Exception as err:  # noqa: BLE001
        print(f'mmcv CUDA kernel check failed: {type(err).__name__}: {err}', file=sys.stderr)
        sys.exit(1)
