#!/usr/bin/env python
"""Check a config's dataset the way training reads it: every image/mask pair
decoded in full, labels against num_classes and the ignore index.

    python tools/validate_dataset.py CONFIG [--split train|val|test|all]
        [--workers N] [--sample N] [--cfg-options KEY=VALUE ...]

Exit status: 0 clean (warnings allowed), 1 errors found, 2 unusable arguments.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from segkit.engine.cli import add_cfg_options, run_tool  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='an mmseg config')
    parser.add_argument('--split', default='all', choices=['train', 'val', 'test', 'all'],
                        help='which dataloader(s) to check (default: all)')
    parser.add_argument('--workers', type=int, default=None,
                        help='processes (default: CPUs, at most 8)')
    parser.add_argument('--sample', type=int, default=None,
                        help='check N random pairs per split instead of all')
    parser.add_argument('--worst', type=int, default=20,
                        help='how many of the worst files to list (default: 20)')
    add_cfg_options(parser, 'train_dataloader.dataset.data_root=/data/ade')
    args = parser.parse_args()
    from segkit.data.validate import main as validate_main
    return validate_main(args.config, args.split, args.workers, args.sample,
                         args.cfg_options, args.worst)


if __name__ == '__main__':
    run_tool(main)
