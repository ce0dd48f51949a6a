#!/usr/bin/env python
"""Class weights from the train split's pixel frequencies, saved as a JSON list.

    python tools/class_weights.py CONFIG [--method inverse|median|log] [--out PATH]

Default output: the config's class_weight_file, else
data/class_weights/<config stem>-<method>.json. Mask2Former configs get
num_classes + 1 entries (the "no object" weight last). An older, different
file is kept as PATH.<time>.bak.
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
    parser.add_argument('--method', default='median', choices=['inverse', 'median', 'log'],
                        help='inverse frequency (mean 1), median-frequency balancing '
                             '(default), or ENet log weighting')
    parser.add_argument('--out', default=None, help='where to save the JSON list')
    parser.add_argument('--max-weight', type=float, default=None,
                        help='cap on any weight (default: 10 for inverse/median, none '
                             'for log)')
    parser.add_argument('--workers', type=int, default=None,
                        help='processes (default: CPUs, at most 8)')
    parser.add_argument('--sample', type=int, default=None,
                        help='count N random train pairs instead of all')
    parser.add_argument('--allow-errors', action='store_true',
                        help='count the readable pixels even if the train split has errors')
    add_cfg_options(parser, 'train_dataloader.dataset.data_root=/data/ade')
    args = parser.parse_args()
    from segkit.data.class_weights import main as weights_main
    return weights_main(args.config, args.method, args.out,
                        'default' if args.max_weight is None else args.max_weight,
                        args.workers, args.sample, args.cfg_options, args.allow_errors)


if __name__ == '__main__':
    run_tool(main)
