"""Cells and tables shared by report.md and the run comparison: markdown and rich."""
from __future__ import annotations

from typing import Optional


def fmt_seconds(s: Optional[float]) -> str:
    if s is None:
        return '?'
    s = int(round(s))
    if s >= 3600:
        return f'{s // 3600}h{s % 3600 // 60:02d}m'
    return f'{s // 60}m{s % 60:02d}s' if s >= 60 else f'{s}s'


def num(x, spec: str = '.2f') -> str:
    return '—' if x is None else format(x, spec)


def md_table(head: list, rows: list) -> list:
    out = ['| ' + ' | '.join(head) + ' |', '|' + '|'.join('---' for _ in head) + '|']
    out += ['| ' + ' | '.join(str(c).replace('|', '\\|') for c in row) + ' |' for row in rows]
    return out + ['']


def rich_table(title: str, head: list, rows: list, wrap=(), **column):
    """A rich Table of str cells; the columns named in ``wrap`` may wrap."""
    from rich.markup import escape
    from rich.table import Table
    table = Table(title=title)
    for h in head:
        table.add_column(escape(h), no_wrap=h not in wrap, **column)
    for row in rows:
        table.add_row(*[escape(c) for c in row])
    return table
