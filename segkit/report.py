"""Terminal tables: per-class IoU after a test."""
from __future__ import annotations


def print_per_class(info: dict, metrics: dict, console=None) -> None:
    """A rich table of per-class IoU / Acc / share of ground-truth pixels."""
    from rich.console import Console
    from rich.table import Table
    console = console or Console()
    total = sum(info['gt_pixels']) or 1
    ious = [v for v in info['IoU'] if v is not None]
    worst = sorted(ious)[: max(1, len(ious) // 5)] if ious else []
    table = Table(title='per-class results', show_edge=True)
    for col, justify in (('class', 'left'), ('IoU', 'right'), ('Acc', 'right'),
                         ('GT pixels', 'right')):
        table.add_column(col, justify=justify)
    for name, iou, acc, px in zip(info['classes'], info['IoU'], info['Acc'],
                                  info['gt_pixels']):
        iou_s = '—' if iou is None else f'{iou:.2f}'
        if iou is not None and iou in worst:
            iou_s = f'[bold red]{iou_s}[/]'
        table.add_row(str(name), iou_s, '—' if acc is None else f'{acc:.2f}',
                      f'{100 * px / total:.2f}%')
    console.print(table)
    summary = '  '.join(f'{k}: {v:.2f}' for k, v in metrics.items()
                        if k in ('aAcc', 'mIoU', 'mAcc'))
    console.print(f'[bold]{summary}[/]')
