"""Runs against a base (``tools/analyze_run.py --compare`` and ``tools/sweep.py``): the
last validation of each, deltas against the first run. Noise: the std of a run's last
``NOISE_K`` validations around their least-squares line (two: their plain std); a delta
is real above ``NOISE_Z`` x sqrt(sd_base^2 + sd_variant^2), and at least ``MIN_POINTS``."""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from segkit.analysis.tables import fmt_seconds, md_table, num, rich_table

NOISE_K = 5
NOISE_Z = 2.0
MIN_POINTS = 0.1  # deltas below 0.1 point are never called real


@dataclass
class RunSummary:
    name: str
    run: object  # logs.Run
    epoch: Optional[int] = None  # of the last validation
    miou: Optional[float] = None
    macc: Optional[float] = None
    best_miou: Optional[float] = None
    best_epoch: Optional[int] = None
    noise: dict = field(default_factory=dict)  # 'mIoU' / 'mAcc' -> std (None: unknown)
    n_noise: int = 0  # validations the spread is taken over
    iou: dict = field(default_factory=dict)  # class -> IoU at the last validation
    iou_noise: dict = field(default_factory=dict)  # class -> std


@dataclass
class Comparison:
    runs: list  # RunSummary; runs[0] is the base
    classes: list  # the base's weakest first
    verdicts: list = field(default_factory=list)  # sentences

    @property
    def base(self) -> RunSummary:
        return self.runs[0]


def _std(values: list) -> Optional[float]:
    vals = [v for v in values if v is not None]
    if len(vals) < 2:
        return None
    if len(vals) == 2:
        return float(np.std(vals, ddof=1))
    x = np.arange(len(vals), dtype=float)
    resid = np.asarray(vals) - np.polyval(np.polyfit(x, vals, 1), x)
    return float(np.sqrt((resid ** 2).sum() / (len(vals) - 2)))


def summarize(name: str, run) -> RunSummary:
    s = RunSummary(name, run)
    if not run.val:
        return s
    last, tail = run.val[-1], run.val[-NOISE_K:]
    s.epoch, s.miou, s.macc = last.epoch, last.miou, last.metrics.get('mAcc')
    best = max(run.val, key=lambda v: v.miou)  # the first best, as the best checkpoint
    s.best_miou, s.best_epoch = best.miou, best.epoch
    s.n_noise = len(tail)
    s.noise = {k: _std([v.metrics.get(k) for v in tail]) for k in ('mIoU', 'mAcc')}
    s.iou = dict(last.iou)
    s.iou_noise = {c: _std([v.iou.get(c) for v in tail]) for c in last.iou}
    return s


def _d(a, b) -> Optional[float]:
    return None if a is None or b is None else a - b


def _call(b: RunSummary, s: RunSummary, cls: Optional[str] = None) -> tuple:
    """(delta, needed, call) of ``s`` against the base ``b``: mIoU, or class ``cls``'s IoU."""
    if cls is None:
        d, sd_a, sd_b = _d(s.miou, b.miou), b.noise.get('mIoU'), s.noise.get('mIoU')
    else:
        d, sd_a, sd_b = _d(s.iou.get(cls), b.iou.get(cls)), b.iou_noise.get(cls), s.iou_noise.get(cls)
    thr = None if sd_a is None or sd_b is None else \
        max(MIN_POINTS, NOISE_Z * math.sqrt(sd_a ** 2 + sd_b ** 2))
    if d is None:
        return d, thr, '?'
    if thr is None:
        return d, thr, 'noise unknown'
    return d, thr, 'within noise' if abs(d) <= thr else ('better' if d > 0 else 'worse')


def compare(named_runs: list) -> Comparison:
    """``named_runs`` = [(name, Run), ...], the base first."""
    names, seen = [], {}
    for n, _ in named_runs:  # two work dirs called alike: name-2 (TensorBoard run names)
        seen[n] = seen.get(n, 0) + 1
        names.append(n if seen[n] == 1 else f'{n}-{seen[n]}')
    runs = [summarize(n, r) for n, (_, r) in zip(names, named_runs)]
    classes = sorted(runs[0].iou, key=lambda c: runs[0].iou[c])
    for s in runs[1:]:  # classes only a variant logged, after the base's
        classes += [c for c in s.iou if c not in classes]
    comp = Comparison(runs, classes)
    comp.verdicts = verdicts(comp)
    return comp


# ------------------------------------------------------------------ tables


SUMMARY_HEAD = ['run', 'epoch', 'mIoU', 'Δ mIoU', 'needed', 'mAcc', 'Δ mAcc', 'best mIoU',
                'wall time', 'vs base']


def summary_rows(comp: Comparison) -> list:
    b = comp.base
    rows = []
    for i, s in enumerate(comp.runs):
        dm, thr, call = _call(b, s)
        rows.append([s.name, str(s.epoch or '—'), num(s.miou), '' if i == 0 else num(dm, '+.2f'),
                     '' if i == 0 else '?' if thr is None else f'±{thr:.2f}', num(s.macc),
                     '' if i == 0 else num(_d(s.macc, b.macc), '+.2f'),
                     f'{num(s.best_miou)} (ep {s.best_epoch})' if s.best_miou is not None
                     else '—', fmt_seconds(s.run.wall_seconds), 'base' if i == 0 else call])
    return rows


def class_head(comp: Comparison) -> list:
    return ['class (base weakest first)', f'{comp.base.name} IoU'] + \
        [f'Δ {s.name}' for s in comp.runs[1:]]


def class_rows(comp: Comparison) -> list:
    """Per class: the base's IoU, then each variant's delta (* beyond noise)."""
    b = comp.base
    return [[c, num(b.iou.get(c))] + [num(d, '+.2f') + (' *' if call in ('better', 'worse') else '')
                                      for d, _, call in (_call(b, s, c) for s in comp.runs[1:])]
            for c in comp.classes]


# ------------------------------------------------------------------ words


def _class_list(items: list) -> str:
    return ', '.join(f'{c} {d:+.2f}' for c, d in items)


def verdicts(comp: Comparison) -> list:
    """Per variant: the mIoU move, the classes it helps and hurts beyond noise; the pick."""
    b = comp.base
    if b.miou is None:
        return [f'The base run {b.name} never validated: nothing to compare against.']
    out = [f'Noise: the spread (standard deviation) of the last {NOISE_K} validations '
           f'of each run around their trend line (here {min(s.n_noise for s in comp.runs)} '
           f'validations; 2: their plain spread); a delta counts when larger than {NOISE_Z:g} '
           'x sqrt(sd_base^2 + sd_variant^2). Few validations give a loose estimate; '
           'two seeds per variant measure it better.']
    better = []
    for s in comp.runs[1:]:
        if s.miou is None:
            out.append(f'{s.name}: never validated.')
            continue
        dm, thr, call = _call(b, s)
        words = {'within noise': 'within noise',
                 'noise unknown': 'noise unknown: one validation per run'}.get(call, 'beyond noise')
        line = (f'{s.name}: mIoU {dm:+.2f} ({b.miou:.2f} -> {s.miou:.2f} at epoch '
                f'{s.epoch}), {words}' + (f' (needs > {thr:.2f})' if thr is not None else '')
                + '.')
        helps, hurts, flat = [], [], 0
        for c in comp.classes:
            d, _, cc = _call(b, s, c)
            if d is None:
                continue
            if cc == 'better' or (cc == 'noise unknown' and d > 0):
                helps.append((c, d))
            elif cc == 'worse' or (cc == 'noise unknown' and d < 0):
                hurts.append((c, d))
            else:
                flat += 1
        if helps:
            line += f' Helps {_class_list(sorted(helps, key=lambda x: -x[1]))}.'
        if hurts:
            line += f' Hurts {_class_list(sorted(hurts, key=lambda x: x[1]))}.'
        if flat:
            line += f' {flat} class(es) within noise.'
        weak = [(c, _d(s.iou.get(c), b.iou.get(c)))
                for c in comp.classes[:max(1, len(comp.classes) // 5)]]
        weak = [(c, d) for c, d in weak if d is not None]
        if weak:
            line += f' On the base\'s weakest ({_class_list(weak)}).'
        out.append(line)
        if call == 'better':
            better.append((dm, s.name))
    if better:
        dm, name = max(better)
        out.append(f'Pick: {name} ({dm:+.2f} mIoU over {b.name}, beyond noise); confirm '
                   'with a full-length run (or a second seed) before adopting it.')
    else:
        out.append(f'Pick: keep {b.name}: no variant beats it beyond noise at this budget '
                   '(a longer budget or a second seed may separate them).')
    return out


# ------------------------------------------------------------------ output


def markdown(comp: Comparison, title: str = '## Comparison') -> list:
    md = [title, '', 'At each run\'s last validation; Δ against '
          f'{comp.base.name}; "needed": the delta that would beat the noise.', '']
    md += md_table(SUMMARY_HEAD, summary_rows(comp))
    if comp.classes:
        md += ['Per-class IoU (base weakest first); * beyond noise.', '']
        md += md_table(class_head(comp), class_rows(comp))
    return md + ['### Verdict', ''] + [f'- {v}' for v in comp.verdicts] + ['']


def write_tensorboard(comp: Comparison, logdir: Path) -> Path:
    """One TensorBoard run per compared run, same tags: they overlay in one chart."""
    from torch.utils.tensorboard import SummaryWriter
    logdir = Path(logdir)
    for s in comp.runs:
        shutil.rmtree(logdir / s.name, ignore_errors=True)  # ours, rewritten each time
        w = SummaryWriter(str(logdir / s.name))
        for p in s.run.train:
            if p.loss is not None:
                w.add_scalar('compare/train_loss', p.loss, p.iter)
        for v in s.run.val:
            for k, x in v.metrics.items():
                w.add_scalar(f'compare/{k}', x, v.epoch)
            for c, x in v.iou.items():
                w.add_scalar(f'compare_IoU/{c}', x, v.epoch)
        w.close()
    return logdir


def write(comp: Comparison, out_dir) -> dict:
    """compare.md, compare_miou.png and tensorboard/<run>/ under ``out_dir``: {name: path}."""
    from segkit.analysis import plots
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plots.plot_compare([s.run for s in comp.runs], [s.name for s in comp.runs],
                             out_dir / 'compare_miou.png')
    made = {'compare_miou': png} if png else {}
    made['tensorboard'] = write_tensorboard(comp, out_dir / 'tensorboard')
    md = markdown(comp, f'# Comparison against {comp.base.name}')
    md += ['![curves overlaid](compare_miou.png)', ''] if png else []
    md += [f'- {s.name}: `{s.run.work_dir}`' for s in comp.runs] + ['']
    made['markdown'] = out_dir / 'compare.md'
    made['markdown'].write_text('\n'.join(md))
    return made


def print_comparison(comp: Comparison, console=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    console = console or Console()
    if not console.is_terminal and console.width < 160:  # a log, a pipe: never truncate
        console = Console(width=160, file=console.file, no_color=console.no_color)
    console.print(rich_table(f'compared with {escape(comp.base.name)} (last validation)',
                             SUMMARY_HEAD, summary_rows(comp)))
    if comp.classes:
        console.print(rich_table('per-class IoU, base weakest first (* beyond noise)',
                                 class_head(comp), class_rows(comp)))
    for v in comp.verdicts:
        console.print(f'- {escape(v)}', soft_wrap=True)
