#!/usr/bin/env python
"""Check this machine's stack (and optionally a config's data and weights).

    python tools/doctor.py [CONFIG] [--work-dir work_dirs] [--json]

Exit 1 if any check FAILs.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from segkit.engine.cli import run_tool  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='also check this config')
    parser.add_argument('--work-dir', default='work_dirs',
                        help='where runs are written (free-disk check)')
    parser.add_argument('--json', action='store_true', help='print the rows as JSON')
    args = parser.parse_args()
    from segkit.doctor import main as doctor_main
    return doctor_main(args.config, args.work_dir, as_json=args.json)


if __name__ == '__main__':
    run_tool(main)
