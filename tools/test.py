#!/usr/bin/env python
"""Test a checkpoint: mmseg's tools/test.py flags; prints per-class IoU and writes metrics JSON.

    python tools/test.py CONFIG CHECKPOINT [options]     (--help lists them)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import segkit  # noqa: E402,F401  (safe checkpoint loading before anything loads)
from segkit.engine.cli import parse_args, run_tool  # noqa: E402


def main() -> int:
    args = parse_args('test')
    from segkit.engine.flows import test
    return test(args)


if __name__ == '__main__':
    run_tool(main)
