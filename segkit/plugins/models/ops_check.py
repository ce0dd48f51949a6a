"""Do mmcv's compiled kernels for the ops segkit's configs use run on a device?

Needs nothing of segkit but ``segkit.errors``, so scripts/install.sh runs it while it
builds the stack (``python segkit/plugins/models/ops_check.py [--device cuda]``: exit 0
if every kernel runs and matches the PyTorch path); :mod:`.ops_routing` and ``doctor``
import the probes. On CPU both fail (mmcv 2.1.0 compiles neither op for CPU), as on a
GPU whose mmcv was built without CUDA kernels.
"""
import sys


def msda_inputs(device, dtype=None, seed: int = 0):
    """Tiny real inputs of mmcv's deformable attention (2 levels, 2 heads)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    dtype = dtype or torch.float32
    shapes = torch.tensor([[4, 4], [2, 2]])
    start = torch.cat((shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]))
    value = torch.rand(1, 20, 2, 8, generator=g, dtype=dtype)
    loc = torch.rand(1, 3, 2, 2, 2, 2, generator=g, dtype=dtype)
    weights = torch.softmax(torch.rand(1, 3, 2, 4, generator=g, dtype=dtype), -1)
    weights = weights.view(1, 3, 2, 2, 2)
    return tuple(t.to(device) for t in (value, shapes, start, loc, weights))


def probe_msda(device='cuda') -> None:
    """Run mmcv's compiled MultiScaleDeformableAttention on ``device``; raise if the
    kernel is missing or disagrees with mmcv's PyTorch path."""
    import torch
    from mmcv.ops.multi_scale_deform_attn import (
        MultiScaleDeformableAttnFunction, multi_scale_deformable_attn_pytorch)
    fn = getattr(MultiScaleDeformableAttnFunction, '_segkit_kernel', MultiScaleDeformableAttnFunction)
    ref_fn = getattr(multi_scale_deformable_attn_pytorch, '_segkit_orig',
                     multi_scale_deformable_attn_pytorch)
    value, shapes, start, loc, weights = msda_inputs(device)
    out = fn.apply(value, shapes, start, loc, weights, 64)
    ref = ref_fn(value, shapes, loc, weights)
    if not torch.allclose(out, ref, atol=1e-4):
        raise RuntimeError('kernel output differs from the PyTorch path')


def probe_sigmoid_focal(device='cuda') -> None:
    """Run mmcv's compiled sigmoid focal loss (forward + backward) on ``device``."""
    import torch
    from mmcv.ops.focal_loss import SigmoidFocalLossFunction
    pred = torch.tensor([[0.5, -1.0, 2.0], [0.1, 0.2, -0.3]], device=device,
                        requires_grad=True)
    target = torch.tensor([0, 3], device=device)  # 3 = num_classes: background
    loss = SigmoidFocalLossFunction.apply(pred, target, 2.0, 0.25, None, 'sum')
    loss.backward()
    if not torch.isfinite(loss) or pred.grad is None:
        raise RuntimeError('kernel returned no finite loss / gradient')


# op key -> probe; doctor and the routing list the ops in this order
PROBES = {'msda': probe_msda, 'sigmoid_focal_loss': probe_sigmoid_focal}


def probe_msda_cuda() -> None:
    probe_msda('cuda')


if __name__ == '__main__':
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from segkit.errors import one_line
    device = sys.argv[sys.argv.index('--device') + 1] if '--device' in sys.argv else 'cuda'
    failed = 0
    for name, probe in PROBES.items():
        try:
            probe(device)
        except Exception as err:  # noqa: BLE001
            print(f'mmcv {name} kernel on {device}: {one_line(err)}', file=sys.stderr)
            failed = 1
    sys.exit(failed)
