"""What the data tools share: a process-pool map with a bounded number of tasks in
flight, the progress bar (rich, on stderr) and rich tables."""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Callable, Iterable, Iterator, Sequence


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def chunked(items: Iterable, size: int) -> Iterator[list]:
    items = iter(items)
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def parallel_map(fn: Callable, tasks: Iterable, workers: int) -> Iterator:
    """``fn(task)`` for each task, in completion order; ``workers <= 1`` runs inline.

    Forked processes: the work is numpy/PIL only and a spawned worker would
    re-import torch through ``segkit`` (seconds each). At most 4 tasks per worker
    are in flight, so a streamed source (a .tgz read in order) is never held whole.
    """
    if workers <= 1:
        yield from map(fn, tasks)
        return
    tasks = iter(tasks)
    ctx = mp.get_context('fork') if 'fork' in mp.get_all_start_methods() else None
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending = set()
        try:
            while True:
                for task in itertools.islice(tasks, workers * 4 - len(pending)):
                    pending.add(pool.submit(fn, task))
                if not pending:
                    return
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


@contextmanager
def progress_bar(desc: str, total: float | None, enabled: bool = True,
                 unit: str = 'files'):
    """A rich progress bar on stderr, as ``bar.advance(n)`` / ``bar.update(completed)``;
    ``unit='bytes'`` shows sizes (archives)."""
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress,
                               TaskProgressColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)
    count = DownloadColumn() if unit == 'bytes' else MofNCompleteColumn()
    with Progress(TextColumn('{task.description}'), BarColumn(), TaskProgressColumn(), count,
                  TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True),
                  disable=not enabled) as progress:
        task = progress.add_task(desc, total=total)
        yield SimpleNamespace(advance=lambda n=1: progress.advance(task, n),
                              update=lambda completed: progress.update(task, completed=completed))


def table(title: str, cols: Sequence[str], right: Sequence[str] = (), **column_kw):
    """A rich table with these columns, those in ``right`` right-justified."""
    from rich.table import Table
    out = Table(title=title)
    for col in cols:
        out.add_column(col, justify='right' if col in right else 'left', **column_kw)
    return out
