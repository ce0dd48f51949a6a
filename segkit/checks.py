"""The PASS / WARN / FAIL / SKIP row that doctor (the machine) and preflight (a
config) both produce, and its table."""
from __future__ import annotations

import shutil
from dataclasses import dataclass

PASS, WARN, FAIL, SKIP = 'PASS', 'WARN', 'FAIL', 'SKIP'


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ''


def render(rows: list[Check], title: str) -> None:
    """A rich table of ``rows``, as wide as the terminal (at least 120 columns)."""
    from rich.console import Console
    from rich.table import Table
    colour = {PASS: 'green', WARN: 'yellow', FAIL: 'bold red', SKIP: 'dim'}
    table = Table(title=title, show_lines=False)
    for col in ('check', 'status', 'detail', 'fix'):
        table.add_column(col, overflow='fold')
    for r in rows:
        table.add_row(r.name, f'[{colour[r.status]}]{r.status}[/]', r.detail, r.fix)
    Console(width=max(120, shutil.get_terminal_size().columns)).print(table)
