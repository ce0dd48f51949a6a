#!/usr/bin/env python
"""Training throughput of a config (img/s, data wait vs step, peak memory, inference
img/s, FLOPs, achieved TFLOP/s); --compare, --find-max-batch, fast-path switches.

    python tools/benchmark.py CONFIG [--synthetic] [--amp bf16] [--compile] [--json OUT]

See ``python tools/benchmark.py -h`` and docs in segkit/bench/train_bench.py.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import segkit  # noqa: E402,F401
from segkit.engine.cli import run_tool  # noqa: E402


def main() -> int:
    from segkit.bench.train_bench import main as bench_main
    return bench_main()


if __name__ == '__main__':
    run_tool(main)
