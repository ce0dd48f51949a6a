#!/usr/bin/env python
"""Convert an iteration-based mmseg config into an epoch-based one (same LR per sample).

    python tools/iter2epoch.py SRC_CONFIG --gpus G --batch B [--dataset-size N]
        [--epochs E] [--src-gpus G0] [--save-best METRIC[:greater|less]] -o DST [--force]

SRC_CONFIG is a path or mmseg::path/in/the/model/zoo.py. DST inherits it, sets the
knobs the shipped leaves have (num_gpus, samples_per_gpu, max_epochs, warmup_epochs,
val_interval, checkpoint_interval, lr) with the arithmetic beside them, and overrides the
loop, sampler, schedulers, hooks and vis backends.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from segkit.engine.cli import run_tool  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='iteration-based config (path or mmseg::...)')
    parser.add_argument('--gpus', type=int, required=True, help='GPUs the new run uses')
    parser.add_argument('--batch', type=int, required=True, help='batch per GPU of the new run')
    parser.add_argument('--dataset-size', type=int,
                        help='train images (default: counted from the files, else the '
                             'standard split size)')
    parser.add_argument('--epochs', type=int,
                        help='stretch the whole schedule to this many epochs instead of '
                             "keeping the source's number of samples")
    parser.add_argument('--src-gpus', type=int,
                        help="GPUs the source was trained on, when its name lacks '{G}xb{B}'")
    parser.add_argument('--save-best', help='metric the best checkpoint is kept by '
                                            '(default: the source\'s, else its IoUMetric\'s)')
    parser.add_argument('-o', '--out', required=True, help='the epoch config to write')
    parser.add_argument('--force', action='store_true', help='overwrite OUT if it exists')
    args = parser.parse_args()
    from segkit.convert.iter2epoch import summary, write
    info = write(args.src, args.out, args.gpus, args.batch, dataset_size=args.dataset_size,
                 epochs=args.epochs, src_gpus=args.src_gpus, save_best=args.save_best,
                 force=args.force)
    print(summary(info, args.out))
    for note in info.notes:
        print(f'note: {note}')
    return 0


if __name__ == '__main__':
    run_tool(main)
