"""Benchmarks: training throughput (:mod:`.train_bench`, ``tools/benchmark.py``), the
data pipeline (:mod:`.data_bench`, ``tools/benchmark_data.py``), model FLOPs
(:mod:`.flops`), the Hugging Face peers (:mod:`.hf_peer`), the routed ops
(:mod:`.ops_cost`); ``scripts/gpu_check.sh`` runs them on a GPU and
:mod:`.gpu_report` gathers its record. Below: what they share.
"""
from __future__ import annotations

import json
import time
from typing import Callable


def timed(fn: Callable, calls: int, device: str = 'cpu') -> list:
    """Seconds of each of ``calls`` calls of ``fn()``, CUDA synchronised around each
    (a warm-up is such a call whose times are dropped)."""
    import torch
    sync = torch.cuda.synchronize if str(device).startswith('cuda') else (lambda: None)
    times = []
    for _ in range(calls):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def write_json(path: str, report: dict) -> None:
    """The report as indented JSON, written atomically."""
    from segkit.io import atomic_write_bytes
    atomic_write_bytes(path, (json.dumps(report, indent=1, default=str) + '\n').encode())


def print_table(title: str, header: list, rows: list, before=(), after=()) -> None:
    """A rich table (first column left-aligned, the others right), with lines before
    and after it."""
    from rich.console import Console
    from rich.table import Table
    table = Table(title=title)
    table.add_column(header[0])
    for name in header[1:]:
        table.add_column(name, justify='right')
    for row in rows:
        table.add_row(*row)
    console = Console()
    for item in (*before, table, *after):
        console.print(item)
