#!/usr/bin/env python
"""Build data/ from the downloaded archives (or their extracted folders).

    python tools/prepare_data.py ade20k ADEChallengeData2016.zip [--out data]
    python tools/prepare_data.py voc-aug --voc VOCtrainval_11-May-2012.tar \\
        --sbd benchmark.tgz [--out data]

Safe to re-run: finished files are skipped, nothing already there is
overwritten. See data/README.md for the downloads.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from segkit.engine.cli import run_tool  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='dataset', required=True)
    ade = sub.add_parser('ade20k', help='ADE20K (SceneParsing, 150 classes)')
    ade.add_argument('src', help='ADEChallengeData2016.zip or the folder it extracts to')
    voc = sub.add_parser('voc-aug', help='Pascal VOC 2012 + SBD (train_aug, 21 classes)')
    voc.add_argument('--voc', required=True,
                     help='VOCtrainval_11-May-2012.tar or its VOCdevkit folder')
    voc.add_argument('--sbd', required=True,
                     help="SBD's benchmark.tgz or its benchmark_RELEASE folder")
    voc.add_argument('--workers', type=int, default=None,
                     help='processes converting masks (default: CPUs, at most 8)')
    for p in (ade, voc):
        p.add_argument('--out', default='data', help='the data folder (default: data)')
        p.add_argument('--allow-partial', action='store_true',
                       help='accept fewer files than the official counts (a subset)')
    args = parser.parse_args()
    from segkit.data.prepare import main as prepare_main
    return prepare_main(args.dataset, src=getattr(args, 'src', None),
                        voc=getattr(args, 'voc', None), sbd=getattr(args, 'sbd', None),
                        out=args.out, allow_partial=args.allow_partial,
                        workers=getattr(args, 'workers', None))


if __name__ == '__main__':
    run_tool(main)
