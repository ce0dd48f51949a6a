#!/usr/bin/env python
"""Write the built-in demo dataset (deterministic for a seed) in mmseg's layout.

    python tools/make_demo_data.py [--out data/demo] [--seed 0] [--train 480 --val 120]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from segkit.engine.cli import run_tool  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='data/demo')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--train', type=int, default=480, help='train images')
    parser.add_argument('--val', type=int, default=120, help='val images')
    parser.add_argument('--force', action='store_true', help='rewrite even if present')
    args = parser.parse_args()
    from segkit.data.shapes import generate
    meta = generate(args.out, seed=args.seed, sizes={'train': args.train, 'val': args.val},
                    force=args.force)
    print(json.dumps({k: meta[k] for k in ('classes', 'sizes', 'stats')}, indent=1))
    print(f'written to {args.out}')
    return 0


if __name__ == '__main__':
    run_tool(main)
