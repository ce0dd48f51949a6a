#!/usr/bin/env python
"""Train a segmentor (mmseg's tools/train.py flags, plus --resume [CKPT], --amp bf16, --auto-scale-lr).

    python tools/train.py CONFIG [options]     (--help lists them)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import segkit  # noqa: E402,F401  (safe checkpoint loading before anything loads)
from segkit.engine.cli import parse_args, run_tool  # noqa: E402


def main() -> int:
    args = parse_args('train')
    from segkit.engine.flows import train
    return train(args)


if __name__ == '__main__':
    run_tool(main)
