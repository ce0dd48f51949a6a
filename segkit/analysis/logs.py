"""Reading a training run: every ``<timestamp>/`` sub-run of a work dir (its JSON-line
log, else the work dir's TensorBoard scalars), merged in time order; where a resume
repeats steps, the later sub-run wins."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional

from segkit.errors import SegkitError

TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')
_LOG_TIME = re.compile(r'^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) - ', re.M)
_EPOCH_LEN = re.compile(r'Epoch\(train\) *\[(\d+)\] *\[ *(\d+) */ *(\d+) *\]')
_RESUMED = re.compile(r'resumed epoch: (\d+), iter: (\d+)')
IOU_PREFIX, ACC_PREFIX = 'IoU_per_class/', 'Acc_per_class/'
SUMMARY_KEYS = ('aAcc', 'mIoU', 'mAcc')


@dataclass
class TrainPoint:
    """One logged train line (``iter`` 1-based)."""
    iter: int
    epoch: int
    lr: Optional[float]
    base_lr: Optional[float]
    loss: Optional[float]
    subrun: int  # index into Run.subruns


@dataclass
class ValPoint:
    """One validation (``epoch`` = the epoch just trained)."""
    epoch: int
    metrics: dict  # aAcc, mIoU, mAcc
    iou: dict  # class -> IoU (%), empty without per-class lines
    acc: dict
    subrun: int

    @property
    def miou(self) -> Optional[float]:
        return self.metrics.get('mIoU')


@dataclass
class TestResult:
    """``test_metrics.json`` of ``tools/test.py``."""
    path: Path
    checkpoint: Optional[str]
    metrics: dict
    classes: list
    iou: list  # per class, None where absent
    acc: list
    gt_pixels: Optional[list]
    confusion: Optional[list]  # rows: ground truth, columns: prediction


@dataclass
class SubRun:
    """One ``<timestamp>/`` training start."""
    name: str
    path: Path
    record: dict
    train: list  # TrainPoint, as logged by this sub-run
    val: list  # ValPoint
    source: str  # 'json', 'tensorboard' or 'none'
    epoch_length: Optional[int] = None  # iterations per epoch
    resumed_at: Optional[tuple] = None  # (epoch, iter) the resume started from
    started: Optional[datetime] = None
    ended: Optional[datetime] = None

    @property
    def config_file(self) -> Optional[Path]:
        p = self.path / 'config.py'
        return p if p.is_file() else None

    @property
    def resumed_from(self) -> Optional[str]:
        return self.record.get('resumed_from')

    @property
    def wall_seconds(self) -> Optional[float]:
        return (self.ended - self.started).total_seconds() if self.started else None

    @property
    def iters(self) -> tuple:
        its = [p.iter for p in self.train]
        return (min(its), max(its)) if its else (None, None)

    @property
    def epochs(self) -> tuple:
        eps = [p.epoch for p in self.train] + [v.epoch for v in self.val]
        return (min(eps), max(eps)) if eps else (None, None)


@dataclass
class Run:
    """A work dir: its training sub-runs in time order and the merged curves."""
    work_dir: Path
    subruns: list  # SubRun with logs, in time order
    empty: list  # SubRun that logged nothing (a start that failed)
    train: list  # merged TrainPoint, by iteration
    val: list  # merged ValPoint (each with an mIoU), by epoch
    test: Optional[TestResult]
    config_path: Optional[str]  # the config given to tools/train.py (as typed)
    classes: list

    @property
    def name(self) -> str:
        return self.work_dir.name

    @property
    def wall_seconds(self) -> Optional[float]:
        times = [sr.wall_seconds for sr in self.subruns if sr.wall_seconds is not None]
        return sum(times) if times else None

    @property
    def last_epoch(self) -> Optional[int]:
        return max([p.epoch for p in self.train] + [v.epoch for v in self.val], default=None)

    def loss_by_epoch(self) -> dict:
        """epoch -> mean of its finite train losses, by epoch."""
        losses = {}
        for p in self.train:
            if p.loss is not None and math.isfinite(p.loss):
                losses.setdefault(p.epoch, []).append(p.loss)
        return {e: sum(v) / len(v) for e, v in sorted(losses.items())}


# ------------------------------------------------------------------ files


def _json_rows(path: Path) -> list:
    rows = []
    for line in path.read_text(encoding='utf-8', errors='replace').splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # blank, or cut short by an interrupted write
            continue
    return [row for row in rows if isinstance(row, dict)]


def _tensorboard_rows(work_dir: Path, after: Optional[tuple] = None) -> list:
    """The JSON-line rows rebuilt from the work dir's TensorBoard run (stepped by iteration),
    from ``after`` = the sub-run's resume point (epoch, iter) on."""
    run = work_dir / 'tensorboard'
    if not any(run.glob('events.out.tfevents.*')):
        return []
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run), size_guidance={'scalars': 0})
    try:
        acc.Reload()
    except Exception:  # noqa: BLE001 - unreadable: no fallback
        return []
    series = {t: {e.step: float(e.value) for e in acc.Scalars(t)}
              for t in acc.Tags().get('scalars', [])}
    progress = series.get('progress/epoch', {})
    per_epoch = next((step / p for step, p in progress.items() if p > 0), None)
    if per_epoch is None:
        return []
    start_ep, start_it = after or (0, 0)
    train, val = {}, {}
    for tag, points in series.items():
        group, _, name = tag.partition('/')
        for step, value in points.items():
            if group == 'train' and '/' not in name and step > start_it:
                row = train.setdefault(step, {'iter': step, 'step': step,
                                              'epoch': math.ceil(step / per_epoch - 1e-9)})
                row[name] = value
            elif group in ('val', 'val_IoU', 'val_Acc'):
                epoch = round(step / per_epoch)
                if epoch > start_ep:
                    key = {'val': '', 'val_IoU': IOU_PREFIX, 'val_Acc': ACC_PREFIX}[group] + name
                    val.setdefault(epoch, {'step': epoch})[key] = value
    return [train[k] for k in sorted(train)] + [val[k] for k in sorted(val)]


def _num(v) -> Optional[float]:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _points(rows: list, index: int) -> tuple:
    """Split JSON-line rows into train and validation points."""
    train, val = {}, {}
    for row in rows:
        if 'iter' in row and ('loss' in row or 'lr' in row):
            it = int(row['iter'])
            train[it] = TrainPoint(it, int(row.get('epoch', 0)), _num(row.get('lr')),
                                   _num(row.get('base_lr')), _num(row.get('loss')), index)
        elif 'step' in row:
            ep = int(row['step'])
            point = val.setdefault(ep, ValPoint(ep, {}, {}, {}, index))
            for k, v in row.items():
                if _num(v) is not None and k in SUMMARY_KEYS:
                    point.metrics[k] = float(v)
                elif _num(v) is not None and k.startswith((IOU_PREFIX, ACC_PREFIX)):
                    per_class = point.iou if k.startswith(IOU_PREFIX) else point.acc
                    per_class[k.split('/', 1)[1]] = float(v)
    # a per-class line without its summary line (a crash in between) is no validation
    vals = [v for _, v in sorted(val.items()) if 'mIoU' in v.metrics]
    return [p for _, p in sorted(train.items())], vals


def _scan_text_log(path: Path) -> dict:
    """Start and end time, iterations per epoch and the resume point of a text log."""
    text = path.read_text(encoding='utf-8', errors='replace') if path.is_file() else ''
    times = [datetime.strptime(t, '%Y/%m/%d %H:%M:%S') for t in _LOG_TIME.findall(text)]
    length, resumed = _EPOCH_LEN.search(text), _RESUMED.search(text)
    return {'started': times[0] if times else None, 'ended': times[-1] if times else None,
            'epoch_length': int(length.group(3)) if length else None,
            'resumed_at': (int(resumed.group(1)), int(resumed.group(2))) if resumed else None}


def _read_subrun(sub: Path, index: int) -> Optional[SubRun]:
    """The training start in ``sub`` (None: a tools/test.py one, or no run at all)."""
    try:
        record = json.loads((sub / 'run_record.json').read_text())
    except (OSError, json.JSONDecodeError):
        record = {}
    if record.get('mode') == 'test' or (sub / 'test_metrics.json').is_file() or \
            (record.get('mode') != 'train' and (sub / f'{sub.name}.json').is_file()):
        return None  # tools/test.py: LoggerHook dumps the test metrics to <ts>/<ts>.json
    vis = sub / 'vis_data'
    log = next((f for f in (vis / f'{sub.name}.json', vis / 'scalars.json')
                if f.is_file() and f.stat().st_size > 0), None)
    text = _scan_text_log(sub / f'{sub.name}.log')
    rows = _json_rows(log) if log else _tensorboard_rows(sub.parent, text['resumed_at'])
    train, val = _points(rows, index)
    source = 'json' if log else 'tensorboard' if rows else 'none'
    sr = SubRun(sub.name, sub, record, train, val, source, **text)
    if sr.epoch_length is None and any(p.epoch > 0 for p in train):
        # the smallest L with (epoch - 1) * L < iter <= epoch * L for every line
        sr.epoch_length = max(-(-p.iter // p.epoch) for p in train if p.epoch > 0)
    # (validation lines only: a run whose train lines were lost)
    return sr if record.get('mode') == 'train' or train or val else None


def find_test_metrics(work_dir: Path) -> Optional[TestResult]:
    """The newest ``<ts>/test_metrics.json`` or ``*test_metrics*.json`` (make demo) in ``work_dir``."""
    cands = list(work_dir.glob('*/test_metrics.json')) + list(work_dir.glob('*test_metrics*.json'))
    for path in sorted(cands, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        pc = data.get('per_class') or {}
        res = TestResult(path, data.get('checkpoint'), data.get('metrics') or {},
                         list(pc.get('classes') or []), list(pc.get('IoU') or []),
                         list(pc.get('Acc') or []), pc.get('gt_pixels'), pc.get('confusion'))
        if res.metrics or res.classes:
            return res
    return None


def original_config(record: dict) -> Optional[str]:
    """The config path given to tools/train.py, from a run record's command."""
    cmd = [str(a) for a in record.get('command') or []]
    for i, arg in enumerate(cmd):
        if arg.endswith(('train.py', 'test.py')):
            return next((a for a in cmd[i + 1:] if not a.startswith('-')), None)
    return None


def _merge(subruns: list) -> tuple:
    """All sub-runs' points; a later one replaces what earlier ones logged from its resume on."""
    train, val = {}, {}
    for sr in subruns:
        cut_it = [p.iter for p in sr.train[:1]]
        cut_ep = [v.epoch for v in sr.val[:1]]
        if sr.resumed_at:
            cut_ep.append(sr.resumed_at[0] + 1)
            cut_it.append(sr.resumed_at[1] + 1)
        if cut_it:
            train = {k: v for k, v in train.items() if k < min(cut_it)}
        if cut_ep:
            val = {k: v for k, v in val.items() if k < min(cut_ep)}
        train.update({p.iter: p for p in sr.train})
        val.update({v.epoch: v for v in sr.val})
    return [train[k] for k in sorted(train)], [val[k] for k in sorted(val)]


def load_run(work_dir) -> Run:
    """Read a work dir of ``tools/train.py`` (SegkitError: not a directory, or no logs)."""
    wd = Path(work_dir)
    if not wd.is_dir():
        raise SegkitError(f'{work_dir} is not a directory: pass the --work-dir of a '
                          'tools/train.py run (e.g. work_dirs/<config name>)')
    if TIMESTAMP.match(wd.name) and (wd / 'vis_data').is_dir():
        raise SegkitError(f'{work_dir} is one start of a run: pass its work dir, '
                          f'{wd.parent}')
    subruns, empty = [], []
    for sub in sorted(p for p in wd.iterdir() if p.is_dir() and TIMESTAMP.match(p.name)):
        sr = _read_subrun(sub, len(subruns))
        if sr is not None:
            (subruns if (sr.train or sr.val) else empty).append(sr)
    if not subruns:
        what = (f'{len(empty)} start(s) that logged nothing ({", ".join(s.name for s in empty)})'
                if empty else 'no <timestamp>/vis_data/<timestamp>.json')
        raise SegkitError(f'no training logs in {work_dir}: {what}; pass the --work-dir '
                          'of a tools/train.py run')
    train, val = _merge(subruns)
    configs = [c for c in map(original_config, (sr.record for sr in subruns)) if c]
    # else the copy mmengine dumps beside the checkpoints
    config_path = configs[-1] if configs else min((p.name for p in wd.glob('*.py')), default=None)
    test = find_test_metrics(wd)
    classes = list(test.classes) if test and test.classes else \
        list(dict.fromkeys(c for v in val for c in [*v.iou, *v.acc])) or _config_classes(subruns)
    return Run(wd, subruns, empty, train, val, test, config_path, classes)


def load_config_file(path: Path):
    """mmengine Config of a sub-run's ``config.py`` (None when it does not load)."""
    from mmengine.config import Config
    try:
        return Config.fromfile(str(path))
    except Exception:  # noqa: BLE001 - a broken dump: the reading goes without it
        return None


def _config_classes(subruns: list) -> list:
    for sr in reversed(subruns):
        cfg = load_config_file(sr.config_file) if sr.config_file else None
        try:
            return list(cfg.train_dataloader.dataset.metainfo.classes)
        except (AttributeError, KeyError, TypeError):
            continue
    return []
