#!/usr/bin/env python
"""Read a training run and explain it: plateau or still rising, overfitting, the LR
actually followed, the weakest and most confused classes, and what to run next.

    python tools/analyze_run.py WORK_DIR [--out DIR] [--compare WORK_DIR2 ...] [--last-k K]

Writes DIR/report.md (default WORK_DIR/report/) with PNG plots and prints a summary.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from segkit.engine.cli import run_tool  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dir', help='the --work-dir of a tools/train.py run')
    parser.add_argument('--out', help='where report.md and the plots go '
                        '(default: WORK_DIR/report/)')
    parser.add_argument('--compare', nargs='+', default=[], metavar='WORK_DIR2',
                        help='other runs to set beside this one')
    parser.add_argument('--last-k', type=int, default=5, metavar='K',
                        help='judge the trend over the last K epochs (default 5)')
    args = parser.parse_args()
    from segkit.errors import SegkitError
    if args.last_k < 1:
        raise SegkitError('--last-k must be at least 1')
    from segkit.analysis import analyze
    analyze(args.work_dir, out=args.out, compare=args.compare, last_k=args.last_k)
    return 0


if __name__ == '__main__':
    run_tool(main)
