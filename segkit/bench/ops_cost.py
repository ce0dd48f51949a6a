"""Cost of the routed ops' PyTorch paths against mmcv's kernels (segkit.plugins.models.
ops_routing): one call of Mask2Former's pixel-decoder deformable attention at a 512
crop (levels 64², 32², 16²; 8 heads x 32 channels, 4 points; the decoder makes 6 such
calls per step), forward + backward, in fp32 as amp_safe runs it.

    python -m segkit.bench.ops_cost --batch 4 --size 512 [--json out.json]
"""
from __future__ import annotations

import argparse
import os
import statistics
from unittest import mock

import torch

from segkit.bench import timed, write_json


def msda_case(batch: int, size: int, device: str, heads: int = 8, ch: int = 32,
              points: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shapes = torch.tensor([[size // s, size // s] for s in (8, 16, 32)])
    start = torch.cat((shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]))
    keys = int(shapes.prod(1).sum())
    value = torch.randn(batch, keys, heads, ch, generator=g)
    loc = torch.rand(batch, keys, heads, 3, points, 2, generator=g)
    weights = torch.softmax(torch.randn(batch, keys, heads, 3 * points, generator=g), -1)
    weights = weights.view(batch, keys, heads, 3, points)
    return [t.to(device) for t in (value, shapes, start, loc, weights)]


def time_path(path: str, case, iters: int, warmup: int = 2) -> float:
    """Median seconds of one forward + backward with SEGKIT_OPS=path."""
    import segkit.plugins  # noqa: F401  (amp_safe + routing)
    from segkit.plugins.models.amp_safe import Fp32MultiScaleDeformableAttnFunction as F
    value, shapes, start, loc, weights = case

    def call():
        v, lc, w = (t.detach().requires_grad_() for t in (value, loc, weights))
        F.apply(v, shapes, start, lc, w, 64).sum().backward()
    with mock.patch.dict(os.environ, SEGKIT_OPS=path):
        timed(call, warmup, value.device.type)
        return statistics.median(timed(call, iters, value.device.type))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--json', help='write the result here')
    args = p.parse_args(argv)
    from segkit.plugins.models.ops_routing import KERNEL, decide
    case = msda_case(args.batch, args.size, args.device)
    res = {'op': 'msda', 'device': args.device, 'batch': args.batch, 'size': args.size,
           'pytorch_ms': 1e3 * time_path('pytorch', case, args.iters)}
    auto = decide('msda', args.device)
    res['kernel'] = auto.path == KERNEL
    res['kernel_reason'] = auto.reason
    if res['kernel']:
        res['kernel_ms'] = 1e3 * time_path('kernel', case, args.iters)
        res['pytorch_over_kernel'] = res['pytorch_ms'] / res['kernel_ms']
    print(f"deformable attention fwd+bwd, batch {args.batch}, {args.size}px crop, "
          f"{args.device}: PyTorch path {res['pytorch_ms']:.2f} ms"
          + (f", kernel {res['kernel_ms']:.2f} ms ({res['pytorch_over_kernel']:.2f}x)"
             if res['kernel'] else f" (no kernel: {auto.reason})"))
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == '__main__':
    from segkit.engine.cli import run_tool
    run_tool(main)
