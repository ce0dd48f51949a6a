"""Iteration-based mmseg config -> epoch-based leaf config (``_base_`` = the source, knobs
with their arithmetic) with the same LR per sample.

Source iteration ``p`` has seen ``p x B0`` samples (B0 = its GPUs x batch), converted
iteration ``j`` ``j x G x B``: every position moves to ``j = round(p x B0 / (G x B))``
(``--epochs E`` instead stretches all by ``E x L / max_iters``). An epoch is ``L =
len(train_dataloader)``: ``ceil(ceil(N / G) / B)`` (DefaultSampler pads each rank).
``convert_to_iter_based`` maps epochs back with ``begin/end = int(e x L)`` and
``milestones = e x L``, compared exactly: a drop no float ``e`` places becomes its own
MultiStep scheduler beginning there. ``max_epochs`` rounds the schedule's end up.
"""
from __future__ import annotations

import copy
import math
import os
import re
import textwrap
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional

from segkit.engine.config import dataset_paths, load_config, resolve_config
from segkit.engine.epoch_checks import epoch_invariant_errors
from segkit.errors import SegkitError
from segkit.facts import SPLIT_SIZES
from segkit.io import atomic_write

# scheduler family (the type without LR/Momentum/ParamScheduler) -> kind
_FAMILIES = {'Poly': 'poly', 'PolyLRRatio': 'poly', 'Linear': 'linear', 'Constant': 'constant',
             'MultiStep': 'multistep', 'Step': 'step', 'CosineAnnealing': 'cosine'}
# kind -> (the arguments it may carry that have no unit of time, those counted in iterations)
_ARGS = {'poly': ({'eta_min', 'power', 'eta_min_ratio'}, set()),
         'linear': ({'start_factor', 'end_factor'}, set()), 'constant': ({'factor'}, set()),
         'multistep': ({'gamma'}, {'milestones'}), 'step': ({'gamma'}, {'step_size'}),
         'cosine': ({'eta_min', 'eta_min_ratio'}, {'T_max'})}
_COMMON_ARGS = {'type', 'begin', 'end', 'by_epoch', 'verbose', 'param_name', '_scope_'}
_MAX_MILESTONES = 200  # a StepLR rewritten as MultiStepLR: beyond this, refuse


@dataclass
class Conversion:
    """What :func:`convert` decided (every number in the written knobs)."""
    src: str
    src_iters: int
    src_gpus: int
    src_batch: int  # per GPU
    gpus: int
    batch: int  # per GPU
    dataset_size: int
    dataset_how: str  # 'counted' | 'table' | 'given'
    dataset_note: str
    epoch_length: int  # iterations per epoch
    scale: Fraction  # converted iterations per source iteration
    schedule_iters: int  # where the converted schedule ends (iterations)
    schedule_epochs: float
    max_epochs: int
    val_interval: int
    checkpoint_interval: int
    warmup_epochs: Optional[float]
    stretched: bool  # --epochs given
    save_best: str
    notes: list = field(default_factory=list)
    drop_last: bool = False
    src_warmup_iters: Optional[int] = None  # where the source's leading LR warmup ends
    src_val_interval: int = 1000
    src_checkpoint_interval: int = -1
    lr: Optional[float] = None  # the source optimizer's

    @property
    def src_total_batch(self) -> int:
        return self.src_gpus * self.src_batch


class _Ref(str):
    """A knob's name: written bare in the config (``end=warmup_epochs``)."""
    __repr__ = str.__str__


def epoch_length(n: int, gpus: int, batch: int, drop_last: bool = False) -> int:
    """len(train_dataloader) per rank with DefaultSampler(round_up=True)."""
    per_rank = -(-n // gpus)
    return per_rank // batch if drop_last else -(-per_rank // batch)


def epoch_value(j: int, length: int):
    """An epoch ``e`` with ``int(e * length) == j`` (a begin/end); whole epochs as int.
    ``j / length`` may multiply back a hair under ``j``: the next float up never does."""
    if j % length == 0:
        return j // length
    e = j / length
    return e if int(e * length) == j else math.nextafter(e, math.inf)


def milestone_value(j: int, length: int):
    """The epoch ``e`` with ``e * length == j`` exactly (a milestone or step size), or
    None: for about one ``j`` in ten no float has it (a neighbour of ``j / length``
    never does either)."""
    e = epoch_value(j, length)
    return e if e * length == j else None


def _nearest(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def _src_batch(cfg, src: str, src_gpus: Optional[int]) -> tuple:
    """(GPUs, batch per GPU) the source recipe was trained with."""
    batch = (cfg.get('train_dataloader') or {}).get('batch_size')
    if not isinstance(batch, int) or batch < 1:
        raise SegkitError(f'train_dataloader.batch_size is {batch!r} in {src}')
    if src_gpus:
        return src_gpus, batch
    m = re.search(r'_(\d+)xb(\d+)[-_]', Path(resolve_config(src)).stem)
    if not m:
        raise SegkitError(f'{Path(src).name} does not say GPUs x batch ({{G}}xb{{B}}): '
                          'pass --src-gpus G (the GPUs the source was trained on)')
    if int(m[2]) != batch:
        raise SegkitError(f'{Path(src).name} says {m[1]}xb{m[2]} but its '
                          f'train_dataloader.batch_size is {batch}: pass --src-gpus G to '
                          'say which ran')
    return int(m[1]), batch


def _dataset_from_table(ds) -> Optional[tuple]:
    """(size, what) from SPLIT_SIZES, through Concat/Repeat wrappers; None if unknown."""
    if 'datasets' in ds:
        parts = [_dataset_from_table(d) for d in ds['datasets']]
        if None in parts:
            return None
        return sum(p[0] for p in parts), ' + '.join(p[1] for p in parts)
    if ds.get('type') == 'RepeatDataset':
        inner = _dataset_from_table(ds.get('dataset') or {})
        return inner and (ds['times'] * inner[0], f"{ds['times']} x {inner[1]}")
    if 'dataset' in ds or ds.get('indices') is not None:
        return None  # another wrapper, or a subset: its length is not a split's
    img = ((ds.get('data_prefix') or {}).get('img_path') or '').rstrip('/')
    ann = ds.get('ann_file') or ''
    for typ, tail, n, what in SPLIT_SIZES:
        if ds.get('type') == typ and (ann.endswith(tail) if tail.endswith('.txt')
                                      else img.endswith(tail) and not ann):
            return n, f'{what} ({n:,})'
    return None


def _leaves(ds) -> list:
    inner = ds.get('datasets') or ([ds['dataset']] if 'dataset' in ds else None)
    return [leaf for d in inner for leaf in _leaves(d)] if inner else [ds]


def _missing_files(ds) -> Optional[str]:
    for leaf in _leaves(ds):
        paths = dataset_paths(leaf)
        for key, exists in (('img_path', os.path.isdir), ('ann_file', os.path.isfile)):
            if key in paths and not exists(paths[key]):
                return paths[key]
        if not paths.keys() & {'img_path', 'ann_file'}:
            return paths.get('data_root') or '(no data paths)'
    return None


def _count_dataset(ds) -> int:
    """len() of the train dataset built through mmseg's registry (no pipeline)."""
    from mmengine.registry import DefaultScope

    import mmseg.datasets  # noqa: F401 - registers mmseg's datasets
    from mmseg.registry import DATASETS
    ds = copy.deepcopy(ds)
    for leaf in _leaves(ds):
        leaf['pipeline'] = []  # its length does not depend on the transforms
        leaf['lazy_init'] = False
    with DefaultScope.overwrite_default_scope('mmseg'):
        return len(DATASETS.build(ds))


def train_set_size(cfg) -> tuple:
    """(N, 'counted' | 'table', note) for the config's train dataset; refuses if unknown."""
    ds = (cfg.get('train_dataloader') or {}).get('dataset')
    if ds is None:
        raise SegkitError('the source has no train_dataloader.dataset')
    ds = _plain(ds)
    missing = _missing_files(ds)
    if missing is None:
        try:
            n = _count_dataset(ds)
        except Exception as err:  # noqa: BLE001 - a broken dataset: fall back
            missing = f'(building it failed: {type(err).__name__}: {str(err)[:80]})'
        else:
            roots = sorted({leaf.get('data_root') or '.' for leaf in _leaves(ds)})
            return n, 'counted', ('counted by building the train dataset under '
                                  + ', '.join(roots))
    table = _dataset_from_table(ds)
    if table is None:
        raise SegkitError(f'cannot tell the train set size: no files at {missing} and '
                          f'{ds.get("type")} is not in segkit\'s table of standard splits; '
                          'pass --dataset-size N')
    return table[0], 'table', (f'{table[1]} from segkit\'s table of standard train splits '
                               f'(no files at {missing}); pass --dataset-size if yours differs')


def _plain(v):
    """ConfigDict/tuple values as plain Python for repr()."""
    if hasattr(v, 'to_dict'):
        v = v.to_dict()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x) for x in v)
    return v


def _scheduler_kind(typ) -> str:
    """'poly', 'linear', ... for mmengine's and mmseg's schedulers; '' for others."""
    name = re.sub(r'(LR|Momentum|ParamScheduler)$', '', typ) if isinstance(typ, str) else ''
    return _FAMILIES.get(name, '')


def _check_source(cfg, src: str) -> tuple:
    """(train_cfg, train_dataloader, schedulers, checkpoint hook) or a refusal."""
    train_cfg = _plain(cfg.get('train_cfg') or {})
    loop = train_cfg.get('type')
    if loop == 'EpochBasedTrainLoop' or 'max_epochs' in train_cfg:
        raise SegkitError(f'{src} is already epoch-based (train_cfg.type={loop!r})')
    if loop != 'IterBasedTrainLoop':
        raise SegkitError(f'train_cfg.type {loop!r} is not IterBasedTrainLoop: nothing '
                          'segkit knows how to convert')
    unknown = set(train_cfg) - {'type', 'max_iters', 'val_interval', 'val_begin', '_scope_'}
    if unknown:
        raise SegkitError(f'train_cfg.{sorted(unknown)[0]} has no epoch mapping')
    loader = _plain(cfg.get('train_dataloader') or {})
    sampler = loader.get('sampler') or {}
    if sampler.get('type') not in ('InfiniteSampler', 'DefaultSampler'):
        raise SegkitError(f'train_dataloader.sampler {sampler.get("type")!r} is not '
                          'InfiniteSampler/DefaultSampler: its epoch length is unknown')
    odd = set(sampler) - {'type', 'shuffle', 'seed', '_scope_'}
    if odd:
        raise SegkitError(f'train_dataloader.sampler.{sorted(odd)[0]} has no DefaultSampler '
                          'equivalent')
    if loader.get('batch_sampler'):
        raise SegkitError('train_dataloader.batch_sampler is set: its epoch length is unknown')
    scheds = _plain(cfg.get('param_scheduler'))
    if isinstance(scheds, dict) and 'type' not in scheds:
        raise SegkitError('param_scheduler per optimizer (a dict of lists) is not supported')
    scheds = [scheds] if isinstance(scheds, dict) else list(scheds or [])
    if not scheds:
        raise SegkitError('the source has no param_scheduler')
    # (of the checkpoint hook's arguments only interval and save_begin count time)
    ckpt = _plain((cfg.get('default_hooks') or {}).get('checkpoint') or {})
    if not ckpt:
        raise SegkitError('the source has no default_hooks.checkpoint')
    return train_cfg, loader, scheds, ckpt


def _save_best(cfg, ckpt: dict, save_best: Optional[str]) -> tuple:
    """(metric, rule) for the checkpoint hook's save_best."""
    if save_best:
        metric, _, rule = save_best.partition(':')
        if rule and rule not in ('greater', 'less'):
            raise SegkitError(f'--save-best {save_best}: the rule after ":" must be '
                              'greater or less')
        return metric, rule or None
    if ckpt.get('save_best'):
        return ckpt['save_best'], ckpt.get('rule')
    ev = cfg.get('val_evaluator')
    ev = ev[0] if isinstance(ev, (list, tuple)) and ev else ev
    typ = (ev or {}).get('type')
    if typ == 'IoUMetric':  # it reports mIoU / mDice / mFscore by name
        return (ev.get('iou_metrics') or ['mIoU'])[0], 'greater'
    if typ == 'DepthMetric':
        return 'rmse', 'less'
    raise SegkitError(f'cannot tell which metric save_best should keep for val_evaluator '
                      f'{typ!r}: pass --save-best METRIC[:greater|less]')


def _warmup_end(scheds: list, max_iters: int) -> Optional[int]:
    """Source iteration where a leading LR warmup (Linear/Constant from 0) ends."""
    s = scheds[0]
    if (s.get('begin', 0) == 0 and s.get('end', max_iters) < max_iters
            and 'Momentum' not in str(s.get('type')) and s.get('param_name', 'lr') == 'lr'
            and _scheduler_kind(s.get('type')) in ('linear', 'constant')):
        return s['end']
    return None


def _base_entry(src: str, dst: Optional[str]) -> str:
    if '::' in src:
        return src
    path = os.path.abspath(src)
    import mmseg
    zoo = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'configs') + os.sep
    if path.startswith(zoo):
        return 'mmseg::' + path[len(zoo):]
    if dst:
        here = os.path.dirname(os.path.abspath(dst))
        if os.path.commonpath([here, path]) != os.sep:
            return os.path.relpath(path, here)
    return path


def _map_scheduler(i: int, s: dict, max_iters: int, k: Fraction, length: int,
                   knobs: dict) -> list:
    """[(scheduler dict for the leaf, comment)], usually one; or SegkitError.
    ``knobs``: {converted iteration: knob name written instead of its epoch}."""
    def it(p) -> int:
        return _nearest(Fraction(p) * k)

    def ep(j: int):
        return knobs.get(j, epoch_value(j, length))
    typ, kind = s.get('type'), _scheduler_kind(s.get('type'))
    where = f'param_scheduler[{i}] ({typ})'
    if s.get('by_epoch', True) is not False:
        raise SegkitError(f'{where} is not stepped by iteration (by_epoch=False) in an '
                          'iteration loop: nothing to map exactly')
    if not kind:
        why = ('follows a validation metric, not the iteration count'
               if 'ReduceOnPlateau' in str(typ) else 'is not one segkit can map exactly '
               '(Poly, Linear, Constant, MultiStep, Step, CosineAnnealing)')
        raise SegkitError(f'{where} {why}: convert it by hand')
    plain, timed = _ARGS[kind]
    extra = set(s) - _COMMON_ARGS - plain - timed
    if extra:  # e.g. last_step (a resumed schedule)
        raise SegkitError(f'{where}: argument {sorted(extra)[0]!r} has no known epoch mapping')
    b, e = s.get('begin', 0), s.get('end', max_iters)
    if not 0 <= b < e <= max_iters:
        raise SegkitError(f'{where}: begin={b}, end={e} is not inside the run [0, '
                          f'{max_iters}] it: an epoch config must end it by max_epochs')
    bj, ej = it(b), it(e)
    if bj >= ej:
        raise SegkitError(f'{where}: [{b}, {e}) it is shorter than one iteration at the '
                          'new batch size')
    out = {key: v for key, v in s.items() if key == 'type' or key not in _COMMON_ARGS | timed}
    if 'param_name' in s:
        out['param_name'] = s['param_name']
    out.update(by_epoch=True, convert_to_iter_based=True, begin=ep(bj), end=ep(ej))
    src = f'{typ} begin={b} end={e}'
    drops = None  # source steps (from begin) where the value is multiplied by gamma
    if kind == 'multistep':
        drops, src = list(s['milestones']), src + f' milestones={list(s["milestones"])}'
    elif kind == 'step':
        step = Fraction(s['step_size']) * k
        src += f' step_size={s["step_size"]}'
        exact = milestone_value(int(step), length) if step.denominator == 1 else None
        if exact is not None:
            out['step_size'] = exact
        else:  # the steps fall between iterations (or floats): place each drop
            drops = list(range(s['step_size'], e - b, s['step_size']))
            if len(drops) > _MAX_MILESTONES:
                raise SegkitError(f'{where}: step_size={s["step_size"]} it is not a whole '
                                  f'number of iterations at the new batch ({float(step):g}) '
                                  f'and it drops {len(drops)} times')
            out['type'] = typ.replace('Step', 'MultiStep')
            src += ' (as MultiStep: the steps fall between iterations)'
    elif kind == 'cosine' and s.get('T_max') is not None:
        out['T_max'] = float(Fraction(s['T_max']) * k / length)  # cos(): a float is fine
        src += f' T_max={s["T_max"]}'
    if drops is None:
        return [(out, f'source: {src} (it)')]
    # MultiStep milestones (from begin) must multiply back exactly; a drop no float can
    # place becomes its own MultiStep beginning there with milestones=[0]
    exact, alone = [], []
    for x in drops:
        if 0 <= x < e - b:  # else never reached while the scheduler runs
            j = min(it(b + x), ej - 1)  # rounding must not push it past the end
            v = milestone_value(j - bj, length)
            exact.append(v) if v is not None else alone.append(j)
    out['milestones'] = exact
    mapped = [(out, f'source: {src} (it; milestones from begin)')] if exact or not alone else []
    return mapped + [(dict(out, begin=ep(j), milestones=[0]),
                      f'its drop at {j} it here, alone: no float epoch x {length} '
                      f'is exactly {j - bj}') for j in alone]


def convert(src: str, gpus: int, batch: int, dataset_size: Optional[int] = None,
            epochs: Optional[int] = None, src_gpus: Optional[int] = None,
            save_best: Optional[str] = None, dst: Optional[str] = None) -> tuple:
    """(text of the epoch leaf config, :class:`Conversion`), or SegkitError. ``epochs``
    stretches the whole schedule to that many epochs instead of keeping the source's
    number of samples; ``dst`` only decides how ``_base_`` points at ``src``."""
    for name, v in (('gpus', gpus), ('batch', batch), ('dataset_size', dataset_size),
                    ('epochs', epochs), ('src_gpus', src_gpus)):
        if v is not None and (not isinstance(v, int) or v < 1):
            raise SegkitError(f'{name} must be a positive integer, got {v!r}')
    cfg = load_config(src)
    train_cfg, loader, scheds, ckpt = _check_source(cfg, src)
    max_iters = train_cfg['max_iters']
    src_g, src_b = _src_batch(cfg, src, src_gpus)
    n, how, note = ((dataset_size, 'given', 'given with --dataset-size') if dataset_size
                    else train_set_size(cfg))
    drop_last = bool(loader.get('drop_last', False))
    length = epoch_length(n, gpus, batch, drop_last)
    if length < 1:
        raise SegkitError(f'{n} images with drop_last=True give no full batch of {batch} '
                          f'on {gpus} GPUs')
    b0, b1 = src_g * src_b, gpus * batch
    k = Fraction(epochs * length, max_iters) if epochs else Fraction(b0, b1)
    sched_iters = _nearest(max_iters * k)
    max_epochs = epochs or max(1, -(-sched_iters // length))  # ceil: the whole schedule
    ends_on_epoch = sched_iters == max_epochs * length
    # positions that are knobs are written by name (edit the knob, both ends move)
    knobs = {sched_iters: _Ref('max_epochs' if ends_on_epoch else 'schedule_epochs')}
    warmup_src = _warmup_end(scheds, max_iters)
    warmup_j = None if warmup_src is None else _nearest(warmup_src * k)
    if warmup_j and warmup_j not in knobs:
        knobs[warmup_j] = _Ref('warmup_epochs')
    else:
        warmup_src = warmup_j = None
    mapped = [x for i, s in enumerate(scheds)
              for x in _map_scheduler(i, s, max_iters, k, length, knobs)]

    def interval(it_count):  # whole epochs nearest the source's interval, in [1, max]
        return min(max_epochs, max(1, _nearest(Fraction(it_count) * k / length)))

    val_src = train_cfg.get('val_interval', 1000)  # IterBasedTrainLoop's default
    ckpt_src = ckpt.get('interval', -1)
    metric, rule = _save_best(cfg, ckpt, save_best)
    notes = []
    if min(val_src, ckpt_src if ckpt_src > 0 else val_src) * k / length < Fraction(1, 2):
        notes.append(f'an epoch ({length} it) is longer than the source\'s validation or '
                     'checkpoint interval: they happen once per epoch')
    if (loader.get('dataset') or {}).get('type') == 'RepeatDataset':
        notes.append(f'the train set is a RepeatDataset (times='
                     f'{loader["dataset"].get("times")}), so one epoch is {n} images; '
                     'unwrap it in the source for more, shorter epochs')
    if b0 != b1 and not epochs:
        notes.append(f'the LR is not rescaled for total batch {b1} (source {b0}): the same '
                     'LR at the same sample, as the schedule')
    lr = ((cfg.get('optim_wrapper') or {}).get('optimizer') or {}).get('lr')
    info = Conversion(
        src=src, src_iters=max_iters, src_gpus=src_g, src_batch=src_b, gpus=gpus,
        batch=batch, dataset_size=n, dataset_how=how, dataset_note=note,
        epoch_length=length, scale=k, schedule_iters=sched_iters,
        schedule_epochs=max_epochs if ends_on_epoch else epoch_value(sched_iters, length),
        max_epochs=max_epochs, val_interval=interval(val_src),
        checkpoint_interval=interval(ckpt_src) if ckpt_src > 0 else ckpt_src,
        warmup_epochs=None if warmup_j is None else epoch_value(warmup_j, length),
        stretched=bool(epochs), save_best=metric, notes=notes, drop_last=drop_last,
        src_warmup_iters=warmup_src, src_val_interval=val_src,
        src_checkpoint_interval=ckpt_src, lr=lr if isinstance(lr, (int, float)) else None)
    return _render(cfg, info, train_cfg, loader, ckpt, rule, mapped, dst, src_gpus), info


def _fmt(v) -> str:
    """Python source for a config value: dict(...) for dicts, knob names bare."""
    if isinstance(v, dict):
        if all(isinstance(key, str) and key.isidentifier() for key in v):
            return 'dict(' + ', '.join(f'{key}={_fmt(x)}' for key, x in v.items()) + ')'
        return '{' + ', '.join(f'{key!r}: {_fmt(x)}' for key, x in v.items()) + '}'
    if isinstance(v, (list, tuple)):
        inner = ', '.join(_fmt(x) for x in v) + (',' if len(v) == 1 and isinstance(v, tuple)
                                                  else '')
        return f'[{inner}]' if isinstance(v, list) else f'({inner})'
    return repr(v)


def _comment(text: str) -> list:
    return textwrap.wrap(text, 92, initial_indent='# ', subsequent_indent='# ',
                         break_on_hyphens=False)


def _knobs(info: Conversion) -> list:
    """The knob lines, each with its arithmetic (detectron2 style)."""
    n, L, g, b, j = (info.dataset_size, info.epoch_length, info.gpus, info.batch,
                     info.schedule_iters)
    b0, b1, max_iters = info.src_total_batch, g * b, info.max_epochs * L

    def samples(iters, batch):
        return f'{iters:,} it x {batch} = {iters * batch / 1e6:.2f} M samples'

    def knob(name, value, why=''):
        return f'{name} = {value!r}'.ljust(26) + f'  # {why}' if why else f'{name} = {value!r}'

    arith = (f'1 ep = {"floor" if info.drop_last else "ceil"}(ceil({n} / {g} GPUs) / {b}) = '
             f'{L} it; {info.max_epochs} ep = {samples(max_iters, b1)} (source: '
             f'{samples(info.src_iters, b0)}' + (
                 f'; --epochs stretches its whole schedule to {info.max_epochs} ep)'
                 if info.stretched else f' = {j / L:.2f} ep here, rounded up' + (
                     f'; the last {max_iters - j} it run at the final LR)'
                     if j != max_iters else ')')))
    lines = [knob('num_gpus', g, 'GPUs you launch with; checked against the actual launch'),
             knob('samples_per_gpu', b, f'images per GPU per iteration -> total batch {b1} '
                                        f'(source: {info.src_gpus} x {info.src_batch})'),
             *_comment(arith), knob('max_epochs', info.max_epochs)]
    lines.append('# (no LR warmup at the start of the source schedule)'
                 if info.warmup_epochs is None else
                 knob('warmup_epochs', info.warmup_epochs, 'linear warmup: source '
                      f'{info.src_warmup_iters} it = {round(info.warmup_epochs * L)} it here'))
    if j != max_iters:
        lines.append(knob('schedule_epochs', info.schedule_epochs,
                          f'the LR schedule ends: source {info.src_iters} it = {j} it here'))
    for name, value, src_value in (
            ('val_interval', info.val_interval, info.src_val_interval),
            ('checkpoint_interval', info.checkpoint_interval, info.src_checkpoint_interval)):
        lines.append(knob(name, value, f'source: every {src_value} it = '
                                       f'{float(src_value * info.scale / L):.2f} ep'
                          if src_value > 0 else 'as in the source: no periodic checkpoints'))
    if info.lr is not None:
        lines.append(knob('lr', info.lr, f"the source's, for its total batch {b0} "
                                         f'(--auto-scale-lr: x {b1}/{b0})'))
    return lines


def _render(cfg, info: Conversion, train_cfg: dict, loader: dict, ckpt: dict,
            rule: Optional[str], mapped: list, dst: Optional[str],
            src_gpus: Optional[int]) -> str:
    """The leaf config: header, _base_, knobs, then what follows from them."""
    from yapf.yapflib.yapf_api import FormatCode
    k, L = info.scale, info.epoch_length
    tc = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=_Ref('max_epochs'),
              val_interval=_Ref('val_interval'))
    if 'val_begin' in train_cfg:  # never validate before the source would
        tc['val_begin'] = max(1, math.ceil(Fraction(train_cfg['val_begin']) * k / L))
    sampler = loader.get('sampler') or {}
    samp = dict(_delete_=True, type='DefaultSampler', shuffle=sampler.get('shuffle', True),
                **{key: sampler[key] for key in ('seed',) if key in sampler})
    ck = dict(by_epoch=True, interval=_Ref('checkpoint_interval'), save_best=info.save_best,
              **({'rule': rule} if rule else {}))
    if 'save_begin' in ckpt:
        ck['save_begin'] = math.ceil(Fraction(ckpt['save_begin']) * k / L)
    # TensorBoard is segkit's TensorboardHook (one run per work dir), not a backend
    backends = [b for b in _plain((cfg.get('visualizer') or {}).get('vis_backends') or [])
                if b.get('type') != 'TensorboardVisBackend']
    backends += [dict(type='LocalVisBackend')] * ('LocalVisBackend' not in
                                                 [x.get('type') for x in backends])
    auto = cfg.get('auto_scale_lr') or {}
    derived = [f'train_cfg = {_fmt(tc)}',
               f'train_dataloader = dict(batch_size=samples_per_gpu, sampler={_fmt(samp)})']
    if info.lr is not None:
        derived.append('optim_wrapper = dict(optimizer=dict(lr=lr))')
    derived += ['param_scheduler = [', *(f'    # {comment}\n    {_fmt(s)},'
                                         for s, comment in mapped), ']',
                f'default_hooks = dict(checkpoint={_fmt(ck)}, '
                'logger=dict(log_metric_by_epoch=True))',
                'log_processor = dict(by_epoch=True)', f'vis_backends = {_fmt(backends)}',
                'visualizer = dict(vis_backends=vis_backends)',
                "# the source's total batch, which its LR is for (mmengine's base_batch_size)",
                f'auto_scale_lr = dict(enable={bool(auto.get("enable"))}, '
                f'base_batch_size={info.src_total_batch})']
    style = {'based_on_style': 'pep8', 'column_limit': 92, 'split_before_named_assigns': False}
    given = ''.join(f' --{key} {v}' for key, v in (
        ('dataset-size', info.dataset_size if info.dataset_how == 'given' else None),
        ('epochs', info.max_epochs if info.stretched else None), ('src-gpus', src_gpus)) if v)
    header = [f'Epoch-based {Path(resolve_config(info.src)).name}: the same LR at the same '
              'number of samples seen (written by tools/iter2epoch.py).',
              f'Dataset: {info.dataset_size} images, {info.dataset_note}.',
              *[f'Note: {x}.' for x in info.notes]]
    return '\n'.join(
        [x for para in header for x in _comment(para)]
        + ['# Regenerate:', f'#   python tools/iter2epoch.py {info.src} --gpus {info.gpus} '
           f'--batch {info.batch}{given} -o {dst or "THIS_FILE"} --force',
           f"_base_ = ['{_base_entry(info.src, dst)}']", '',
           f'# ---- knobs (the epoch values assume {info.gpus} GPUs x {info.batch}: to change '
           'those, re-run)', *_knobs(info), '', '# ---- derived from the knobs',
           FormatCode('\n'.join(derived) + '\n', style_config=style)[0]])


def write(src: str, dst: str, gpus: int, batch: int, dataset_size: Optional[int] = None,
          epochs: Optional[int] = None, src_gpus: Optional[int] = None,
          save_best: Optional[str] = None, force: bool = False) -> Conversion:
    """Convert and write ``dst`` once it loads and holds the epoch invariants."""
    if not dst.endswith('.py'):
        raise SegkitError(f'{dst}: the output must be a .py config')
    if os.path.exists(dst) and not force:
        raise SegkitError(f'{dst} exists: pass --force to overwrite it')
    text, info = convert(src, gpus, batch, dataset_size=dataset_size, epochs=epochs,
                         src_gpus=src_gpus, save_best=save_best, dst=dst)

    def write_checked(tmp):  # checked beside dst, so a relative _base_ resolves as there
        with open(tmp, 'w') as f:
            f.write(text)
        errors = epoch_invariant_errors(load_config(tmp))
        if errors:
            raise SegkitError(f'the converted config breaks an epoch invariant: {errors[0]}')
    atomic_write(dst, write_checked, suffix='.py')
    return info


def summary(info: Conversion, dst: str) -> str:
    """What the CLI prints after writing."""
    return (f'wrote {dst}: {info.max_epochs} ep x {info.epoch_length} it ({info.gpus} GPUs '
            f'x {info.batch}), LR schedule ends at '
            f'{info.schedule_iters / info.epoch_length:.2f} ep; {info.dataset_size} images '
            f'({info.dataset_how}); validate every {info.val_interval} ep, checkpoint every '
            f'{info.checkpoint_interval} ep, best by {info.save_best}')
