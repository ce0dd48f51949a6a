#!/usr/bin/env python
"""Images/s of a config's train pipeline per DataLoader worker, per-transform shares,
ours vs another config (e.g. mmseg's stock one) on the same files.

    python tools/benchmark_data.py CONFIG [--compare CONFIG2] [--images N] [--workers K]

Uses the config's dataset when present, else synthetic files of the dataset's size.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import segkit  # noqa: E402,F401
from segkit.engine.cli import run_tool  # noqa: E402


def main() -> int:
    from segkit.bench.data_bench import main as bench_main
    return bench_main()


if __name__ == '__main__':
    run_tool(main)
