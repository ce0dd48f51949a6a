"""``report.md`` with its plots, and the short terminal summary (rich)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from segkit.analysis import compare as cmp
from segkit.analysis import plots
from segkit.analysis.advice import short_path
from segkit.analysis.tables import fmt_seconds, md_table, num, rich_table


@dataclass
class Report:
    markdown: Path
    plots: dict = field(default_factory=dict)  # name -> PNG path
    comparison: object = None  # compare.Comparison with --compare


VERDICT_WORDS = {'no-validation': 'never validated', 'too-few': 'too few validations to tell',
                 'rising': 'still rising', 'plateau': 'converged (plateau)', 'falling': 'falling'}
COMPARE_HEAD = ['run', 'best mIoU', 'best epoch', 'epochs', 'vals', 'final LR',
                'wall time', 'reading']


def compare_rows(run, reading, compare: list) -> list:
    """The table of ``run`` beside ``compare`` = [(Run, Reading), ...]."""
    return [[run.name, num(r.best_miou), str(r.best_epoch or '—'), str(r.epochs_trained or '—'),
             str(r.n_val), num(r.final_lr, '.3g'), fmt_seconds(run.wall_seconds),
             r.verdict + (', overfitting' if r.overfitting else '')
             + (', LR mismatch' if r.lr_mismatch else '')]
            for run, r in [(run, reading)] + list(compare)]


def write_report(run, reading, out_dir, compare: Optional[list] = None) -> Report:
    """Write ``out_dir/report.md`` and its PNGs; ``compare`` = [(Run, Reading), ...]
    of other runs to set beside this one."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    r = reading
    pngs = {'loss_lr': plots.plot_loss_lr(run, r, out_dir / 'loss_lr.png'),
            'val_metrics': plots.plot_val(run, r, out_dir / 'val_metrics.png'),
            'per_class_iou': plots.plot_per_class(r, out_dir / 'per_class_iou.png'),
            'confusion': plots.plot_confusion(run.test, out_dir / 'confusion.png')}
    pngs = {k: v for k, v in pngs.items() if v is not None}
    md = [f'# Run report: {run.name}', '',
          f'- work dir: `{run.work_dir}`',
          f'- config: `{run.config_path or "?"}`',
          f'- sub-runs: {r.n_subruns}' + (f' (+{r.n_empty_subruns} that logged nothing)'
                                          if r.n_empty_subruns else ''),
          f'- train time (wall, all sub-runs): {fmt_seconds(run.wall_seconds)}',
          f'- generated: {time.strftime("%Y-%m-%d %H:%M:%S")} by `tools/analyze_run.py` '
          f'(last K = {r.last_k} epochs)', '']
    md += ['## Reading', ''] + [f'- {s}' for s in r.findings] + ['']
    md += ['## Next steps', '']
    if r.next_steps:
        for i, step in enumerate(r.next_steps, 1):
            md.append(f'{i}. {step.why}')
            if step.commands:
                md += ['', '   ```bash'] + [f'   {c}' for c in step.commands] + ['   ```']
            md.append('')
    else:
        md += ['Nothing to change from what the logs show.', '']
    md += ['## Curves', '']
    if 'loss_lr' in pngs:
        md += ['Train loss and LR by iteration (dotted lines: resumes; dashed red: the LR '
               'config.py schedules).', '', '![loss and LR](loss_lr.png)', '']
    if 'val_metrics' in pngs:
        md += ['Validation by epoch (star: best mIoU; shaded: the last K epochs).', '',
               '![validation metrics](val_metrics.png)', '']
        n = len(run.val)  # the first 2, the last 10 and the best
        shown = [v for i, v in enumerate(run.val)
                 if n <= 12 or i < 2 or i >= n - 10 or v.epoch == r.best_epoch]
        rows = [[v.epoch, num(v.metrics.get('mIoU')), num(v.metrics.get('mAcc')),
                 num(v.metrics.get('aAcc')), run.subruns[v.subrun].name
                 + (' **best**' if v.epoch == r.best_epoch else '')] for v in shown]
        md += md_table(['epoch', 'mIoU', 'mAcc', 'aAcc', 'sub-run'], rows)
    else:
        md += ['No validation was logged.', '']
    md += ['## Learning rate', '']
    if r.lr_checks:
        rows = [[c.subrun, c.key, len(c.steps), num(c.peak, '.3g'), f'{100 * c.max_error:.2f}%',
                 'yes' if c.matches else f'**no** (from iteration {c.first_bad})'
                 + (', follows the checkpoint\'s schedule' if c.follows_previous else '')]
                for c in r.lr_checks]
        md += md_table(['sub-run', 'logged key', 'steps', 'configured peak', 'max deviation',
                        'follows config.py'], rows)
    se = r.schedule
    if se:
        md += [f'Configured: max_epochs {se.max_epochs}, LR schedule ends at epoch '
               f'{"(open)" if se.end_epoch is None else f"{se.end_epoch:g}"}, final LR '
               f'{num(se.final_lr, ".3g")} (peak {num(se.peak_lr, ".3g")}). Logged final LR: '
               f'{num(r.final_lr, ".3g")}.', '']
    md += ['## Classes', '']
    if 'per_class_iou' in pngs:
        md += [f'Per-class IoU ({r.class_source}), sorted; colour: share of ground-truth '
               'pixels (when known).', '', '![per-class IoU](per_class_iou.png)', '']
    if r.classes:
        weak = {row.name for row in r.weakest}
        rows = [[('**' + row.name + '**') if row.name in weak else row.name, num(row.iou),
                 num(row.acc), '—' if row.share is None else f'{row.share:.2f}%',
                 'yes' if row.rare else '']
                for row in sorted(r.classes, key=lambda x: (x.iou is None, x.iou or 0))]
        md += md_table(['class (weakest in bold)', 'IoU', 'Acc', 'pixels', 'rare'], rows)
    else:
        md += ['No per-class values were logged.', '']
    if 'confusion' in pngs:
        md += ['## Confusion', '', f'From `{short_path(run.test.path)}` (checkpoint '
               f'`{run.test.checkpoint}`); rows: ground truth, columns: prediction.', '',
               '![confusion matrix](confusion.png)', '']
        if r.confusions:
            md += md_table(['true class', 'predicted as', 'share of its pixels', 'pixels'],
                           [[c.truth, c.predicted, f'{100 * c.fraction:.1f}%', c.pixels]
                            for c in r.confusions])
    md += ['## Sub-runs', '']
    rows = []
    for sr in sorted(run.subruns + run.empty, key=lambda x: x.name):
        empty = any(sr is e for e in run.empty)
        its, eps = sr.iters, sr.epochs
        rows.append([sr.name, sr.started.strftime('%Y-%m-%d %H:%M:%S') if sr.started else '?',
                     Path(sr.resumed_from).name if sr.resumed_from else '—',
                     f'{eps[0]}-{eps[1]}' if eps[0] is not None else '—',
                     f'{its[0]}-{its[1]}' if its[0] is not None else '—',
                     len(sr.train), len(sr.val), sr.epoch_length if sr.epoch_length and not empty
                     else '?',
                     fmt_seconds(sr.wall_seconds), 'logged nothing' if empty else sr.source])
    md += md_table(['sub-run', 'started', 'resumed from', 'epochs', 'iterations', 'train lines',
                    'validations', 'iters/epoch', 'wall time', 'read from'], rows)
    comparison = None
    if compare:  # the comparison tools/sweep.py prints too (segkit.analysis.compare)
        comparison = cmp.compare([(x.name, x) for x in [run] + [c[0] for c in compare]])
        made = cmp.write(comparison, out_dir)
        md += ['## Compared runs', ''] + md_table(COMPARE_HEAD, compare_rows(run, reading, compare))
        md += cmp.markdown(comparison, f'### Against {run.name}')
        if 'compare_miou' in made:
            pngs['compare_miou'] = made['compare_miou']
            md += ['![mIoU of the compared runs](compare_miou.png)', '']
        md += [f'- {c[0].name}: `{c[0].work_dir}`' for c in compare] + [
            f'- TensorBoard, the runs overlaid: `tensorboard --logdir '
            f'{short_path(made["tensorboard"])}`', '']
    path = out_dir / 'report.md'
    path.write_text('\n'.join(md))
    return Report(path, pngs, comparison)


def print_summary(run, reading, report: Optional[Report] = None, compare=None,
                  console=None) -> None:
    """The short terminal version: verdict, findings, next commands (printed whole,
    not wrapped, so they can be copied)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.panel import Panel
    console = console or Console()
    r = reading
    lines = [f'[bold]{VERDICT_WORDS.get(r.verdict, r.verdict)}'
             f'{"  +  overfitting signs" if r.overfitting else ""}[/]']
    for s in r.findings:
        bad = 'MISMATCH' in s or 'Overfitting sign' in s
        lines.append(f'[red]- {escape(s)}[/]' if bad else f'- {escape(s)}')
    console.print(Panel('\n'.join(lines), title=f'run {escape(run.name)}', expand=True))
    if r.next_steps:
        console.print('[bold]next steps[/]')
        for i, step in enumerate(r.next_steps, 1):
            console.print(f'{i}. {escape(step.why)}')
            for c in step.commands:
                console.print(f'   [cyan]{escape(c)}[/]', soft_wrap=True)
    if compare:
        console.print(rich_table('compared runs', COMPARE_HEAD, compare_rows(run, r, compare),
                                 wrap=('reading',), overflow='fold'))
        if report and report.comparison:
            cmp.print_comparison(report.comparison, console)
    if report:
        console.print(f'report: {escape(str(report.markdown))}  ({len(report.plots)} plots)',
                      soft_wrap=True)
