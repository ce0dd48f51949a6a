"""PNG plots of a run (matplotlib, Agg: no display needed); each function writes one
file and returns its path, None when there is nothing to draw."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np


def pyplot():
    import matplotlib
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, out: Path) -> Path:
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    pyplot().close(fig)
    return out


def _resume_marks(run) -> list:
    """(first iteration, first epoch, label) of every sub-run after the first."""
    marks = []
    for sr in run.subruns[1:]:
        if sr.resumed_at:
            ep, it = sr.resumed_at
        else:
            it = (sr.iters[0] - 1) if sr.iters[0] else None
            ep = (sr.epochs[0] - 1) if sr.epochs[0] else None
        marks.append((it, ep, f'resume ({sr.name})' if (sr.resumed_at or sr.resumed_from)
                      else f'restart ({sr.name})'))
    return marks


def plot_loss_lr(run, reading, out: Path) -> Optional[Path]:
    loss = [p for p in run.train if p.loss is not None]
    lrs = [p for p in run.train if p.lr is not None]
    if not (loss or lrs):
        return None
    fig, (ax1, ax2) = pyplot().subplots(2, 1, figsize=(9, 6), sharex=True)
    ax1.plot([p.iter for p in loss], [p.loss for p in loss], lw=1, label='train loss')
    ax2.plot([p.iter for p in lrs], [p.lr for p in lrs], lw=1.5, label='logged lr')
    for chk in reading.lr_checks:
        if chk.configured:
            ax2.plot(chk.steps, chk.configured, ls='--', lw=1, color='tab:red',
                     label='configured (config.py)' if chk is reading.lr_checks[0] else None)
    for it, _, label in _resume_marks(run):
        if it is not None:
            for ax in (ax1, ax2):
                ax.axvline(it + 0.5, color='grey', ls=':', lw=1)
            ax1.annotate(label, (it + 0.5, 1), xycoords=('data', 'axes fraction'), rotation=90,
                         va='top', ha='right', fontsize=7, color='grey')
    ax1.set(ylabel='loss', title=f'{run.name}: train loss and LR')
    ax2.set(ylabel='learning rate', xlabel='iteration')
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(loc='upper right', fontsize=8)
    return _save(fig, out)


def plot_val(run, reading, out: Path) -> Optional[Path]:
    if not run.val:
        return None
    fig, ax = pyplot().subplots(figsize=(9, 4.5))
    eps = [v.epoch for v in run.val]
    for key, style in (('mIoU', '-o'), ('mAcc', '-s'), ('aAcc', '-^')):
        ys = [v.metrics.get(key) for v in run.val]
        if any(y is not None for y in ys):
            ax.plot(eps, [np.nan if y is None else y for y in ys], style, ms=3, lw=1.2,
                    label=key)
    if reading.best_epoch is not None:
        ax.plot([reading.best_epoch], [reading.best_miou], '*', ms=16, color='gold',
                mec='black', label=f'best mIoU {reading.best_miou:.2f} (epoch '
                f'{reading.best_epoch})', zorder=5)
        if len(reading.window) >= 2:
            ax.axvspan(reading.window[0], reading.window[-1], color='grey', alpha=0.1,
                       label=f'last {reading.last_k} epochs')
    for _, ep, label in _resume_marks(run):
        if ep is not None:
            ax.axvline(ep + 0.5, color='grey', ls=':', lw=1)
    ax.set(xlabel='epoch', ylabel='%', title=f'{run.name}: validation')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='best')
    return _save(fig, out)


def plot_per_class(reading, out: Path) -> Optional[Path]:
    rows = sorted((row for row in reading.classes if row.iou is not None),
                  key=lambda r: (r.iou, r.share if r.share is not None else 0.0))
    if not rows:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, max(3.0, min(40.0, 0.22 * len(rows) + 1.2))))
    ys = np.arange(len(rows))
    shares = [r.share for r in rows]
    if all(s is not None for s in shares):
        import matplotlib.colors as mcolors
        logs = np.log10(np.maximum(np.array(shares, float), 1e-4))
        norm = mcolors.Normalize(vmin=logs.min(), vmax=max(logs.max(), logs.min() + 1e-6))
        cmap = plt.get_cmap('viridis')
        ax.barh(ys, [r.iou for r in rows], color=cmap(norm(logs)))
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                     label='log10(% of ground-truth pixels)')
    else:
        ax.barh(ys, [r.iou for r in rows], color='tab:blue')
    ax.set_yticks(ys, [r.name if r.share is None else f'{r.name} ({r.share:.2g}%)'
                  for r in rows], fontsize=7 if len(rows) > 40 else 9)
    ax.invert_yaxis()  # the weakest on top
    for y, r in zip(ys, rows):
        ax.text(r.iou + 0.5, y, f'{r.iou:.1f}', va='center', fontsize=7)
    ax.set(xlabel='IoU (%)', xlim=(0, 100), title=f'per-class IoU ({reading.class_source})')
    ax.grid(axis='x', alpha=0.3)
    return _save(fig, out)


def plot_confusion(test, out: Path) -> Optional[Path]:
    if test is None or not test.confusion:
        return None
    cm = np.asarray(test.confusion, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(cm)
    size = min(24.0, max(5.0, 0.3 * n + 3))
    fig, ax = pyplot().subplots(figsize=(size, size * 0.85))
    im = ax.imshow(norm, cmap='Blues', vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, label='share of the true class\'s pixels')
    names = test.classes or [str(i) for i in range(n)]
    if n <= 60:
        ax.set_xticks(range(n), names, rotation=90, fontsize=7 if n > 25 else 9)
        ax.set_yticks(range(n), names, fontsize=7 if n > 25 else 9)
    if n <= 25:
        for i, j in zip(*np.nonzero(norm >= 0.005)):
            ax.text(j, i, f'{norm[i, j]:.2f}', ha='center', va='center', fontsize=7,
                    color='white' if norm[i, j] > 0.5 else 'black')
    ax.set(xlabel='predicted', ylabel='ground truth', title='confusion matrix (row-normalised)')
    return _save(fig, out)


def plot_compare(runs: list, names: list, out: Path) -> Optional[Path]:
    if not any(run.val for run in runs):
        return None
    fig, (ax, ax2) = pyplot().subplots(2, 1, figsize=(9, 7), sharex=True)
    for run, name in zip(runs, names):
        color = None
        if run.val:
            line, = ax.plot([v.epoch for v in run.val], [v.miou for v in run.val], '-o', ms=3,
                            lw=1.2, label=name)
            color = line.get_color()
            best = max(run.val, key=lambda v: v.miou)
            ax.plot([best.epoch], [best.miou], '*', ms=12, color=color, mec='black')
        by_epoch = run.loss_by_epoch()
        if by_epoch:
            ax2.plot(list(by_epoch), list(by_epoch.values()), '-', lw=1.2, color=color,
                     label=name)
    ax.set(ylabel='val mIoU (%)', title='mIoU by epoch (best starred)')
    ax.legend(fontsize=8)
    ax2.set(xlabel='epoch', ylabel='train loss (epoch mean)')
    for a in (ax, ax2):
        a.grid(alpha=0.3)
    return _save(fig, out)
