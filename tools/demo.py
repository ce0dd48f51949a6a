#!/usr/bin/env python
"""Train, validate, test and report the built-in demo (what `make demo` runs).

    python tools/demo.py [--model segformer|mask2former] [--epochs N]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from segkit.engine.cli import run_tool  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='segformer', choices=['segformer', 'mask2former'])
    parser.add_argument('--epochs', type=int, help="override the demo config's max_epochs")
    args = parser.parse_args()
    from segkit.demo import run_demo
    return run_demo(args.model, epochs=args.epochs)


if __name__ == '__main__':
    run_tool(main)
