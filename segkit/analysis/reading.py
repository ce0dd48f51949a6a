"""The numbers of a run (:func:`measure`); every threshold is a constant below, with
what it means; :mod:`~segkit.analysis.advice` says them in words."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from segkit.analysis.logs import Run, load_config_file
from segkit.analysis.lr_curve import ScheduleEnd, check_subrun, schedule_end, trailing_minimum
from segkit.engine.config import parse_config_name

# The window: the validations of the last K epochs (epoch >= last validated epoch - K),
# at least the last 2. gain = last - first mIoU in it; slope = least-squares mIoU
# points per epoch over it; the verdict comes from slope x K:
DEFAULT_LAST_K = 5
RISING_POINTS = 1.0  # >= +1.0 point per K epochs: still rising (train longer)
FALLING_POINTS = -1.0  # <= -1.0 point per K epochs: falling; in between: a plateau
MIN_VALIDATIONS = 3  # fewer validations: too few to tell a trend
# Train loss "still falling": its per-epoch means, fitted over the same epochs, drop
# by at least this fraction of their mean level per K epochs.
LOSS_FALL_FRACTION = 0.05
# Best epoch "far before the end": at least max(K, this fraction of the validated
# epochs) before the last validation, and the last mIoU this many points below it.
BEST_FAR_FRACTION = 0.25
BEST_DROP_POINTS = 1.0
# Rare: a share of ground-truth pixels below this fraction of an even share.
RARE_FACTOR = 0.25
# The weakest: the lowest-IoU WEAK_FRACTION of the classes (1 to WEAK_MAX), plus
# those tied with the last of them (up to WEAK_MAX); rarer first among ties.
WEAK_FRACTION = 0.2
WEAK_MAX = 5
# Learned nothing (one class predicted everywhere): at most one class above this IoU.
LEARNED_IOU = 1.0
# A confusion pair: at least this fraction of a class's ground-truth pixels
# predicted as the other class; the top CONFUSION_TOP pairs.
CONFUSION_MIN = 0.05
CONFUSION_TOP = 5
# The LR "stuck at its minimum" at the end: at least this many epochs of it.
LR_STUCK_EPOCHS = 1.0


@dataclass
class ClassRow:
    name: str
    iou: Optional[float]
    acc: Optional[float]
    share: Optional[float]  # % of ground-truth pixels
    rare: bool = False


@dataclass
class Confusion:
    truth: str
    predicted: str
    fraction: float  # of the truth class's pixels
    pixels: int


@dataclass
class Reading:
    """The numbers behind the report; ``findings`` say them in words."""
    last_k: int
    n_subruns: int
    n_empty_subruns: int
    n_val: int
    epochs_trained: Optional[int]
    max_epochs: Optional[int]
    best_miou: Optional[float] = None
    best_epoch: Optional[int] = None
    last_miou: Optional[float] = None
    last_val_epoch: Optional[int] = None
    window: list = field(default_factory=list)  # epochs of the window
    gain: Optional[float] = None  # last - first mIoU in the window
    slope: Optional[float] = None  # mIoU points per epoch (least squares)
    best_gain: Optional[float] = None  # best overall - best before the window
    verdict: str = 'no-validation'  # no-validation, too-few, rising, plateau, falling
    loss_slope: Optional[float] = None  # train loss per epoch over the window
    loss_change: Optional[float] = None  # slope x K / mean loss (fraction)
    loss_falling: bool = False
    epochs_since_best: Optional[int] = None
    best_far_before_end: bool = False
    overfitting: bool = False
    lr_checks: list = field(default_factory=list)  # LRCheck per sub-run
    lr_mismatch: bool = False
    schedule: Optional[ScheduleEnd] = None
    lr_stuck: Optional[tuple] = None  # (iterations, epochs, lr) at the minimum at the end
    final_lr: Optional[float] = None
    class_source: Optional[str] = None  # 'test' or 'val (epoch N)'
    classes: list = field(default_factory=list)  # ClassRow, in class order
    weakest: list = field(default_factory=list)  # ClassRow, weakest first
    weak_rare: list = field(default_factory=list)
    imbalance: bool = False  # most of the weakest classes are rare
    degenerate: Optional[str] = None  # the one class predicted everywhere
    confusions: list = field(default_factory=list)
    batch: Optional[tuple] = None  # (actual total batch, planned, label) when they differ
    auto_scaled: bool = False
    findings: list = field(default_factory=list)
    next_steps: list = field(default_factory=list)  # NextStep


def _fit(xs, ys) -> float:
    if len(xs) < 2:
        return 0.0
    return float(np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)[0])


def window_of(epochs: list, last_k: int) -> list:
    """Indices of the window: validations at epoch >= last - K (at least 2)."""
    idx = [i for i, e in enumerate(epochs) if e >= epochs[-1] - last_k]
    return idx if len(idx) >= 2 else list(range(max(0, len(epochs) - 2), len(epochs)))


def _read_curve(r: Reading, run: Run) -> None:
    r.n_val = len(run.val)
    if not run.val:
        return
    epochs, miou = [v.epoch for v in run.val], [v.miou for v in run.val]
    best_i = int(np.argmax(miou))  # the first best, as the best checkpoint keeps it
    r.best_miou, r.best_epoch = miou[best_i], epochs[best_i]
    r.last_miou, r.last_val_epoch = miou[-1], epochs[-1]
    idx = window_of(epochs, r.last_k)
    r.window = [epochs[i] for i in idx]
    wm = [miou[i] for i in idx]
    r.gain = wm[-1] - wm[0]
    r.slope = _fit(r.window, wm)
    before = [m for e, m in zip(epochs, miou) if e < r.window[0]]
    r.best_gain = (max(miou) - max(before)) if before else None
    r.epochs_since_best = r.last_val_epoch - r.best_epoch
    span = max(r.last_k, BEST_FAR_FRACTION * r.last_val_epoch)
    r.best_far_before_end = (r.epochs_since_best >= span
                             and r.best_miou - r.last_miou >= BEST_DROP_POINTS)
    per_k = r.slope * r.last_k
    r.verdict = ('too-few' if r.n_val < MIN_VALIDATIONS else 'rising' if per_k >= RISING_POINTS
                 else 'falling' if per_k <= FALLING_POINTS else 'plateau')
    # train loss over the same epochs
    by_epoch = run.loss_by_epoch()
    eps = [e for e in by_epoch if r.window[0] <= e <= r.last_val_epoch]
    if len(eps) >= 2:
        means = [by_epoch[e] for e in eps]
        r.loss_slope = _fit(eps, means)
        level = float(np.mean(means))
        r.loss_change = r.loss_slope * r.last_k / level if level > 0 else None
        r.loss_falling = r.loss_change is not None and r.loss_change <= -LOSS_FALL_FRACTION
    r.overfitting = (r.verdict in ('plateau', 'falling') and r.loss_falling) or \
        (r.verdict != 'rising' and r.best_far_before_end)


def _read_lr(r: Reading, run: Run, cfgs: list) -> None:
    prev = None  # (config, epoch length) of the last sub-run with a config
    for sr, cfg in zip(run.subruns, cfgs):
        chk = check_subrun(sr, cfg, previous=prev if sr.resumed_at or sr.resumed_from else None)
        if chk is not None:
            r.lr_checks.append(chk)
        if cfg is not None:
            prev = (cfg, sr.epoch_length)
    r.lr_mismatch = any(c.first_bad is not None for c in r.lr_checks)
    length = next((sr.epoch_length for sr in reversed(run.subruns) if sr.epoch_length), None)
    if cfgs[-1] is not None:
        r.schedule = schedule_end(cfgs[-1], length)
        r.max_epochs = r.schedule.max_epochs if r.schedule else r.max_epochs
    r.lr_stuck = trailing_minimum(run.train, length)
    r.final_lr = next((p.lr for p in reversed(run.train) if p.lr is not None), None)


def _read_classes(r: Reading, run: Run) -> None:
    test = run.test
    shares = {}
    if test and test.gt_pixels and test.classes:
        total = float(sum(test.gt_pixels)) or 1.0
        shares = {c: 100.0 * px / total for c, px in zip(test.classes, test.gt_pixels)}
    rows = []
    if test and test.classes and any(v is not None for v in test.iou):
        r.class_source = 'test'
        rows = [ClassRow(c, test.iou[i] if i < len(test.iou) else None,
                         test.acc[i] if i < len(test.acc) else None, shares.get(c))
                for i, c in enumerate(test.classes)]
    else:
        best = next((v for v in run.val if v.epoch == r.best_epoch and v.iou), None) or \
            next((v for v in reversed(run.val) if v.iou), None)
        if best is not None:
            r.class_source = f'val (epoch {best.epoch})'
            rows = [ClassRow(c, best.iou.get(c), best.acc.get(c), shares.get(c))
                    for c in run.classes or best.iou]
    n = len(rows)
    for row in rows:
        row.rare = row.share is not None and row.share < RARE_FACTOR * 100.0 / n
    r.classes = rows
    scored = sorted((row for row in rows if row.iou is not None),
                    key=lambda x: (x.iou, x.share if x.share is not None else 0.0))
    k = min(WEAK_MAX, max(1, round(WEAK_FRACTION * n))) if scored else 0
    while 0 < k < min(WEAK_MAX, len(scored)) and scored[k].iou == scored[k - 1].iou:
        k += 1
    r.weakest = scored[:k]
    learned = [row for row in scored if row.iou > LEARNED_IOU]
    if len(scored) >= 2 and len(learned) <= 1:
        r.degenerate = learned[0].name if learned else '(none)'
    r.weak_rare = [row for row in r.weakest if row.rare]
    r.imbalance = bool(r.weak_rare) and len(r.weak_rare) * 2 >= len(r.weakest)
    if test and test.confusion:
        r.confusions = top_confusions(test.classes, test.confusion)


def top_confusions(classes: list, confusion: list) -> list:
    """The off-diagonal pairs with the largest share of the truth class's pixels."""
    cm = np.asarray(confusion, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    hits = (cm > 0) & (frac >= CONFUSION_MIN) & ~np.eye(len(cm), dtype=bool)
    pairs = [Confusion(classes[i], classes[j], frac[i, j], int(cm[i, j]))
             for i, j in zip(*np.nonzero(hits))]
    return sorted(pairs, key=lambda p: (-p.fraction, -p.pixels))[:CONFUSION_TOP]


def _read_batch(r: Reading, run: Run, cfg) -> None:
    if cfg is None or not run.config_path:
        return
    name = parse_config_name(run.config_path)
    batch = (cfg.get('train_dataloader') or {}).get('batch_size')
    world = int(run.subruns[-1].record.get('world_size') or 1)
    r.auto_scaled = bool((cfg.get('auto_scale_lr') or {}).get('enable'))
    if name and batch and name.total_batch != world * batch:
        r.batch = (world * batch, name.total_batch, f'{name.gpus}x{name.batch}')


def measure(run: Run, last_k: int = DEFAULT_LAST_K) -> Reading:
    """The numbers of ``run`` over the last ``last_k`` epochs (``advice`` adds the words)."""
    if last_k < 1:
        raise ValueError('last_k must be >= 1')
    r = Reading(last_k=last_k, n_subruns=len(run.subruns), n_empty_subruns=len(run.empty),
                n_val=0, epochs_trained=run.last_epoch, max_epochs=None)
    cfgs = [load_config_file(sr.config_file) if sr.config_file else None for sr in run.subruns]
    _read_curve(r, run)
    _read_lr(r, run, cfgs)
    _read_classes(r, run)
    _read_batch(r, run, cfgs[-1])
    if r.degenerate:  # one class everywhere: underfitting, whatever the loss does
        r.overfitting = False
    return r
