#!/usr/bin/env python
"""Convert pretrained backbone weights to mmseg key names (see checkpoints/README.md).

    python tools/convert_weights.py mit mit_b2.pth                 # or a nvidia/mit-b2 folder
    python tools/convert_weights.py swin swin_tiny_patch4_window7_224.pth
    python tools/convert_weights.py mobilenetv3 deeplabv3_mobilenet_v3_large-fc3c493d.pth

DST defaults to the file the configs expect under checkpoints/. The result is
loaded into the mmseg backbone (strict) before it is written; an existing DST
is kept unless --force.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from segkit.engine.cli import run_tool  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('kind', choices=('mit', 'swin', 'mobilenetv3'),
                        help='backbone family of SRC')
    parser.add_argument('src', metavar='SRC',
                        help='.pth / .bin / .safetensors file, or a folder holding one')
    parser.add_argument('dst', metavar='DST', nargs='?',
                        help='output .pth (default: the checkpoints/ file the configs '
                             'expect, e.g. checkpoints/mit_b2_mmseg.pth)')
    parser.add_argument('--arch', choices=('b0', 'b1', 'b2', 'b3', 'b4', 'b5'),
                        help='mit only: the variant SRC must be (default: read from SRC)')
    parser.add_argument('--force', action='store_true', help='overwrite an existing DST')
    args = parser.parse_args()
    from segkit.convert.weights import convert_file
    convert_file(args.kind, args.src, args.dst, arch=args.arch, force=args.force)
    return 0


if __name__ == '__main__':
    run_tool(main)
