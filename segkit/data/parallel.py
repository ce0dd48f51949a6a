"""Process-pool map over chunks with a bounded number of tasks in flight, and
the progress bar every data tool shows (rich, on stderr)."""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Sequence


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def chunked(items: Sequence, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def parallel_map(fn: Callable, tasks: Iterable, workers: int,
                 window: int | None = None) -> Iterator:
    """``fn(task)`` for each task, results in completion order.

    ``workers <= 1`` runs inline (tests, small samples). Otherwise processes:
    forked, because the work is numpy/PIL only and a spawned worker would
    re-import torch through ``segkit`` (seconds each). At most ``window`` tasks
    are in flight, so a streamed source (a .tgz read in order) is never
    buffered whole in memory.
    """
    if workers <= 1:
        for task in tasks:
            yield fn(task)
        return
    window = window or workers * 4
    ctx = mp.get_context('fork') if 'fork' in mp.get_all_start_methods() else None
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending = set()
        try:
            for task in tasks:
                pending.add(pool.submit(fn, task))
                if len(pending) >= window:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        yield fut.result()
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


class _NoBar:
    def advance(self, n: float = 1) -> None:
        pass

    def update(self, completed: float) -> None:
        pass


class _Bar:
    def __init__(self, progress, task):
        self._progress, self._task = progress, task

    def advance(self, n: float = 1) -> None:
        self._progress.advance(self._task, n)

    def update(self, completed: float) -> None:
        self._progress.update(self._task, completed=completed)


@contextmanager
def progress_bar(desc: str, total: float | None, enabled: bool = True,
                 unit: str = 'files'):
    """A rich progress bar on stderr; ``unit='bytes'`` shows sizes (archives)."""
    if not enabled:
        yield _NoBar()
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress,
                               TaskProgressColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)
    count = DownloadColumn() if unit == 'bytes' else MofNCompleteColumn()
    columns = [TextColumn('{task.description}'), BarColumn(), TaskProgressColumn(),
               count, TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(desc, total=total)
        yield _Bar(progress, task)
