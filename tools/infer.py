#!/usr/bin/env python
"""Segment images with a trained checkpoint: colour masks and overlays (dataset palette).

    python tools/infer.py CONFIG CHECKPOINT INPUT [INPUT...] --out DIR [--device cpu]

INPUT: image files or folders (searched recursively). Writes DIR/masks/<name>.png
and DIR/overlays/<name>.png.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import segkit  # noqa: E402,F401  (safe checkpoint loading)
from segkit.engine.cli import run_tool  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('inputs', nargs='+', metavar='INPUT')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--device', help='cpu, cuda:0, ... (default: cuda:0 if available)')
    parser.add_argument('--opacity', type=float, default=0.5, help='mask opacity in overlays')
    args = parser.parse_args()
    from segkit.engine.infer import run_inference
    written = run_inference(args.config, args.checkpoint, args.inputs, args.out,
                            device=args.device, opacity=args.opacity)
    print(f'{len(written)} mask(s) in {os.path.join(args.out, "masks")}, overlays in '
          f'{os.path.join(args.out, "overlays")}')
    return 0


if __name__ == '__main__':
    run_tool(main)
