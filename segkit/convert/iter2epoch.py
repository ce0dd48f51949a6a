"""Iteration-based mmseg config -> epoch-based leaf config with the same LR per sample.

The written file inherits the source (``_base_``) and overrides only what epochs
change: the train loop, the train sampler and batch, every scheduler's positions,
the checkpoint/logger hooks, the log processor and the vis backends.

The mapping, exactly as mmengine will run it:

* the source's iteration ``p`` has seen ``p x B0`` samples (B0 = its GPUs x batch);
  the converted run's iteration ``j`` has seen ``j x G x B``. So every position
  (begin, end, milestone, period) moves to ``j = round(p x k)``, ``k = B0 / (G x B)``
  converted iterations per source iteration.
* an epoch is ``L = len(train_dataloader)`` iterations: DefaultSampler gives each
  rank ``ceil(N / G)`` samples (padding), in ``ceil(ceil(N / G) / B)`` batches.
* ``convert_to_iter_based`` turns epochs back into iterations with
  ``begin/end = int(e x L)`` and ``milestones = e x L`` (no int(): a milestone
  fires only if that product is exactly an integer). So each position is written
  as a float ``e`` picked so that ``e x L`` is exactly ``j``; where no float does
  (it happens), that drop becomes its own MultiStep scheduler beginning at ``j``.

Rounding: ``max_epochs = ceil(schedule iterations / L)`` and the schedule still ends
at its exact fractional epoch, so the LR at every sample matches the source over
the source's whole run; the < 1 epoch after it runs at the schedule's final LR.
``epochs=E`` instead stretches everything (k = E x L / max_iters): the LR at each
fraction of training matches, and the schedule ends exactly at epoch E.
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

from segkit.engine.config import dataset_paths, load_config, parse_config_name, resolve_config
from segkit.errors import SegkitError
from segkit.facts import SPLIT_SIZES
from segkit.io import atomic_write


# scheduler family -> the arguments it may carry that have no unit of time
_PLAIN_ARGS = {
    'poly': {'eta_min', 'power', 'eta_min_ratio'},
    'linear': {'start_factor', 'end_factor'},
    'constant': {'factor'},
    'multistep': {'gamma'},
    'step': {'gamma'},
    'exponential': set(),
    'cosine': {'eta_min', 'eta_min_ratio'},
    'restart': {'restart_weights', 'eta_min', 'eta_min_ratio'},
    'onecycle': {'eta_max', 'pct_start', 'anneal_strategy', 'div_factor',
                 'final_div_factor', 'three_phase'},
}
_TIME_ARGS = {'multistep': {'milestones'}, 'step': {'step_size'}, 'exponential': {'gamma'},
              'cosine': {'T_max'}, 'restart': {'periods'}, 'onecycle': {'total_steps'}}
_COMMON_ARGS = {'type', 'begin', 'end', 'by_epoch', 'verbose', 'last_step', 'param_name',
                '_scope_'}
_MAX_MILESTONES = 200  # a StepLR rewritten as MultiStepLR: beyond this, refuse


@dataclass
class Conversion:
    """What :func:`convert` decided (every number in the written header)."""
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

    @property
    def src_total_batch(self) -> int:
        return self.src_gpus * self.src_batch

    @property
    def total_batch(self) -> int:
        return self.gpus * self.batch

    @property
    def max_iters(self) -> int:
        """Iterations of the converted run (max_epochs x epoch_length)."""
        return self.max_epochs * self.epoch_length


class _Ref(str):
    """A knob's name: written bare in the config (``end=warmup_epochs``)."""

    def __repr__(self) -> str:
        return str(self)


# ---------------------------------------------------------------- arithmetic

def epoch_length(n: int, gpus: int, batch: int, drop_last: bool = False) -> int:
    """len(train_dataloader) per rank with DefaultSampler(round_up=True)."""
    per_rank = -(-n // gpus)
    return per_rank // batch if drop_last else -(-per_rank // batch)


def epoch_value(j: int, length: int, exact: bool = True):
    """The epoch ``e`` that mmengine turns back into iteration ``j``.

    ``exact``: ``e * length == j`` (a milestone or period: compared, not truncated),
    SegkitError if no float has that; otherwise ``int(e * length) == j`` (begin/end),
    which one always has. A whole epoch is an int.
    """
    if j % length == 0:
        return j // length
    e = j / length
    cands = [e]
    up = down = e
    for _ in range(8):  # j / length rounded; a neighbour may multiply back exactly
        up, down = math.nextafter(up, math.inf), math.nextafter(down, -math.inf)
        cands += [up, down]
    for c in cands:
        if c * length == j:
            return c
    if not exact:
        for c in cands:
            if int(c * length) == j:
                return c
    raise SegkitError(f'no float epoch maps back to iteration {j} exactly with '
                      f'{length} iterations per epoch')


def _nearest(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


# ---------------------------------------------------------------- the source

def _src_batch(cfg, src: str, src_gpus: Optional[int]) -> tuple:
    """(GPUs, batch per GPU) the source recipe was trained with."""
    batch = (cfg.get('train_dataloader') or {}).get('batch_size')
    if not isinstance(batch, int) or batch < 1:
        raise SegkitError(f'train_dataloader.batch_size is {batch!r} in {src}')
    if src_gpus:
        return src_gpus, batch
    name = parse_config_name(src)
    if name:
        gpus, named = name.gpus, name.batch
    else:  # names like ..._8xb2-adamw-80k_... the strict parser does not take
        m = re.search(r'_(\d+)xb(\d+)[-_]', Path(resolve_config(src)).stem)
        if not m:
            raise SegkitError(f'{Path(src).name} does not say GPUs x batch ({{G}}xb{{B}}): '
                              'pass --src-gpus G (the GPUs the source was trained on)')
        gpus, named = int(m[1]), int(m[2])
    if named != batch:
        raise SegkitError(f'{Path(src).name} says {gpus}xb{named} but its '
                          f'train_dataloader.batch_size is {batch}: pass --src-gpus G to '
                          'say which ran')
    return gpus, batch


def _dataset_from_table(ds) -> Optional[tuple]:
    """(size, what) from SPLIT_SIZES, through Concat/Repeat wrappers; None if unknown."""
    if ds is None:
        return None
    if 'datasets' in ds:
        parts = [_dataset_from_table(d) for d in ds['datasets']]
        if any(p is None for p in parts):
            return None
        return sum(p[0] for p in parts), ' + '.join(p[1] for p in parts)
    if ds.get('type') == 'RepeatDataset':
        inner = _dataset_from_table(ds.get('dataset'))
        if inner is None:
            return None
        return ds['times'] * inner[0], f"{ds['times']} x {inner[1]}"
    if 'dataset' in ds or ds.get('indices') is not None:
        return None  # another wrapper, or a subset: its length is not a split's
    img = ((ds.get('data_prefix') or {}).get('img_path') or '').rstrip('/')
    ann = ds.get('ann_file') or ''
    for typ, tail, n, what in SPLIT_SIZES:
        if ds.get('type') == typ and (ann.endswith(tail) if tail.endswith('.txt')
                                      else img.endswith(tail) and not ann):
            return n, f'{what} ({n:,})'
    return None


def _leaves(ds):
    if 'datasets' in ds:
        for d in ds['datasets']:
            yield from _leaves(d)
    elif 'dataset' in ds:
        yield from _leaves(ds['dataset'])
    else:
        yield ds


def _missing_files(ds) -> Optional[str]:
    for leaf in _leaves(ds):
        paths = dataset_paths(leaf)
        if 'img_path' in paths and not os.path.isdir(paths['img_path']):
            return paths['img_path']
        if 'ann_file' in paths and not os.path.isfile(paths['ann_file']):
            return paths['ann_file']
        if 'img_path' not in paths and 'ann_file' not in paths:
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
    """(N, 'counted' | 'table', note) for the source's train dataset; refuses if unknown."""
    ds = (cfg.get('train_dataloader') or {}).get('dataset')
    if ds is None:
        raise SegkitError('the source has no train_dataloader.dataset')
    ds = ds.to_dict() if hasattr(ds, 'to_dict') else dict(ds)
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


def _scheduler_kind(name: str) -> str:
    import mmengine.optim  # noqa: F401 - fills mmengine's PARAM_SCHEDULERS
    from mmengine.optim.scheduler import param_scheduler as ps
    from mmengine.registry import PARAM_SCHEDULERS
    if not isinstance(name, str):
        return ''
    cls = PARAM_SCHEDULERS.get(name)
    if cls is None:  # mmseg's own (PolyLRRatio): its engine is slow to import
        import mmseg.engine  # noqa: F401
        from mmseg.registry import PARAM_SCHEDULERS as MMSEG_SCHEDULERS
        cls = MMSEG_SCHEDULERS.get(name)
    if cls is None:
        raise SegkitError(f'unknown scheduler type {name!r}')
    # only mmengine's and mmseg's own classes: a subclass may count time its own way
    if not (cls.__module__.startswith('mmengine.optim.scheduler')
            or cls.__module__.startswith('mmseg.engine.schedulers')):
        return ''
    for base, kind in ((ps.PolyParamScheduler, 'poly'), (ps.LinearParamScheduler, 'linear'),
                       (ps.ConstantParamScheduler, 'constant'),
                       (ps.MultiStepParamScheduler, 'multistep'),
                       (ps.StepParamScheduler, 'step'),
                       (ps.ExponentialParamScheduler, 'exponential'),
                       (ps.CosineAnnealingParamScheduler, 'cosine'),
                       (ps.CosineRestartParamScheduler, 'restart'),
                       (ps.OneCycleParamScheduler, 'onecycle')):
        if issubclass(cls, base):
            return kind
    return ''


def _plain(v):
    """ConfigDict/tuple values as plain Python for repr()."""
    if hasattr(v, 'to_dict'):
        v = v.to_dict()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x) for x in v)
    return v


# ---------------------------------------------------------------- the mapping

class _Mapper:
    """Source iterations -> converted iterations -> epoch values (or knob names)."""

    def __init__(self, k: Fraction, length: int, knobs: dict):
        self.k, self.length, self.knobs = k, length, knobs  # knobs: {iteration: _Ref}

    def it(self, p) -> int:
        return _nearest(Fraction(p) * self.k)

    def ep(self, j: int):
        """begin/end value for iteration ``j``: a knob's name, or int(e x L) == j."""
        if j in self.knobs:
            return self.knobs[j]
        return epoch_value(j, self.length, exact=False)


def _exact_epoch(j: int, length: int):
    """``epoch_value(j, exact=True)``, or None where no float multiplies back to ``j``
    (with ``length * ulp(e) > ulp(j)`` that happens for some ``j``)."""
    try:
        return epoch_value(j, length, exact=True)
    except SegkitError:
        return None


def _check_scheduler(where: str, s: dict, kind: str, max_iters: int) -> None:
    if 'convert_to_iter_based' in s or s.get('by_epoch', True) is not False:
        raise SegkitError(f'{where} is not stepped by iteration (by_epoch=False) in an '
                          'iteration loop: nothing to map exactly')
    if s.get('last_step', -1) != -1:
        raise SegkitError(f'{where}: last_step={s["last_step"]} (a resumed schedule) '
                          'cannot be mapped')
    if not kind:
        why = ('follows a validation metric, not the iteration count'
               if 'ReduceOnPlateau' in str(s.get('type')) else
               'is not one segkit can map exactly')
        raise SegkitError(f'{where} {why}: convert it by hand')
    extra = set(s) - _COMMON_ARGS - _PLAIN_ARGS[kind] - _TIME_ARGS.get(kind, set())
    if extra:
        raise SegkitError(f'{where}: argument {sorted(extra)[0]!r} has no known epoch '
                          'mapping')
    if kind == 'onecycle' and s.get('total_steps') is not None:
        raise SegkitError(f'{where}: total_steps={s["total_steps"]} fixes the cycle in '
                          'iterations apart from begin/end; drop it (it defaults to '
                          'end - begin) to convert')
    b, e = s.get('begin', 0), s.get('end', max_iters)
    if not 0 <= b < e <= max_iters:
        raise SegkitError(f'{where}: begin={b}, end={e} is not inside the run [0, '
                          f'{max_iters}] it: an epoch config must end it by max_epochs')


def _map_scheduler(i: int, s: dict, max_iters: int, m: _Mapper) -> list:
    """[(scheduler dict for the leaf, comment)], usually one; or SegkitError."""
    s = _plain(dict(s))
    typ = s.get('type')
    kind = _scheduler_kind(typ)
    where = f'param_scheduler[{i}] ({typ})'
    _check_scheduler(where, s, kind, max_iters)
    b, e = s.get('begin', 0), s.get('end', max_iters)
    bj, ej = m.it(b), m.it(e)
    if bj >= ej:
        raise SegkitError(f'{where}: [{b}, {e}) it is shorter than one iteration at the '
                          'new batch size')
    out = {'type': typ}
    out.update((key, v) for key, v in s.items()
               if key not in _COMMON_ARGS and key not in _TIME_ARGS.get(kind, ()))
    if 'param_name' in s:
        out['param_name'] = s['param_name']
    out.update(by_epoch=True, convert_to_iter_based=True, begin=m.ep(bj), end=m.ep(ej))
    src = f'{typ} begin={b} end={e}'
    drops = None  # source steps (from begin) where the value is multiplied by gamma
    if kind == 'multistep':
        drops, src = list(s['milestones']), src + f' milestones={list(s["milestones"])}'
        if any(x < 0 for x in drops):
            raise SegkitError(f'{where}: negative milestones cannot be mapped')
    elif kind == 'step':
        step = Fraction(s['step_size']) * m.k
        src += f' step_size={s["step_size"]}'
        exact = _exact_epoch(int(step), m.length) if step.denominator == 1 else None
        if exact is not None:
            out['step_size'] = exact
        else:  # the steps fall between iterations (or floats): place each drop
            drops = list(range(s['step_size'], e - b, s['step_size']))
            if len(drops) > _MAX_MILESTONES:
                raise SegkitError(f'{where}: step_size={s["step_size"]} it is not a whole '
                                  f'number of iterations at the new batch ({float(step):g}) '
                                  f'and it drops {len(drops)} times')
            out['type'] = typ.replace('Step', 'MultiStep')
            if _scheduler_kind(out['type']) != 'multistep':
                raise SegkitError(f'{where}: step_size is not a whole number of iterations '
                                  'at the new batch size')
            src += ' (as MultiStep: the steps fall between iterations)'
    elif kind == 'exponential':
        # gamma is per iteration: one here is 1/k source iterations' worth of decay
        out['gamma'] = s['gamma'] if m.k == 1 else s['gamma'] ** float(1 / m.k)
        src += f' gamma={s["gamma"]} per source it'
    elif kind == 'cosine' and s.get('T_max') is not None:
        t = Fraction(s['T_max']) * m.k  # cos(pi t / T_max): a float T_max is fine
        exact = _exact_epoch(int(t), m.length) if t.denominator == 1 else None
        out['T_max'] = exact if exact is not None else float(t) / m.length
        src += f' T_max={s["T_max"]}'
    elif kind == 'restart':
        return _map_restart(where, s, out, src, bj, m)
    if drops is None:
        return [(out, f'source: {src} (it)')]
    return _place_drops(out, src, drops, b, e, bj, m, ej)


def _place_drops(out: dict, src: str, drops: list, b: int, e: int, bj: int,
                 m: _Mapper, ej: int) -> list:
    """MultiStep milestones. mmengine compares ``milestone x epoch_length`` with the
    step count, so each must multiply back exactly; a drop no float can place becomes
    its own MultiStep beginning there with milestones=[0] (fires on its first step)."""
    exact, alone = [], []
    for x in drops:
        if b + x >= e:  # never reached while the scheduler runs
            continue
        j = min(m.it(b + x), ej - 1)  # rounding must not push it past the end
        v = _exact_epoch(j - bj, m.length)
        if v is not None:
            exact.append(v)
        else:
            alone.append(j)
    out['milestones'] = exact
    mapped = ([(out, f'source: {src} (it; milestones from begin)')] if exact or not alone
              else [])
    for j in alone:
        one = dict(out, begin=m.ep(j), milestones=[0])
        mapped.append((one, f'its drop at {j} it here, alone: no float epoch x {m.length} '
                            f'is exactly {j - bj}'))
    return mapped


def _map_restart(where: str, s: dict, out: dict, src: str, bj: int, m: _Mapper) -> list:
    """CosineRestart: a restart is ``step == 0`` after float sums of the periods, so they
    must multiply back exactly, else each period becomes its own one-period scheduler."""
    ends, acc = [], s.get('begin', 0)
    for p in s['periods']:
        acc += p
        ends.append(m.it(acc))
    starts = [bj] + ends[:-1]
    periods = [x - y for x, y in zip(ends, starts)]
    if any(p <= 0 for p in periods):
        raise SegkitError(f'{where}: a period is shorter than one iteration at the new '
                          'batch size')
    src += f' periods={list(s["periods"])} (it)'
    exact = [_exact_epoch(p, m.length) for p in periods]
    if None not in exact:
        out['periods'] = exact
        return [(out, f'source: {src}')]
    end_j = m.it(s.get('end', acc))
    weights = list(s.get('restart_weights', [1]))
    mapped = []
    for n, (start, p, w) in enumerate(zip(starts, periods, weights)):
        if start >= end_j:
            break
        one = dict(out, begin=m.ep(start), end=m.ep(min(start + p, end_j)),
                   periods=[p / m.length], restart_weights=[w])
        mapped.append((one, f'source: {src}' if n == 0 else f'its period {n}, alone'))
    return mapped


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
    if typ == 'IoUMetric':
        metrics = ev.get('iou_metrics') or ['mIoU']
        return metrics[0], 'greater'  # IoUMetric reports mIoU / mDice / mFscore by name
    if typ == 'DepthMetric':
        return 'rmse', 'less'
    raise SegkitError(f'cannot tell which metric save_best should keep for val_evaluator '
                      f'{typ!r}: pass --save-best METRIC[:greater|less]')


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


# ---------------------------------------------------------------- convert / write

_CKPT_ARGS = {'type', 'interval', 'by_epoch', 'save_best', 'rule', 'max_keep_ckpts',
              'save_last', 'save_optimizer', 'save_param_scheduler', 'out_dir',
              'filename_tmpl', 'greater_keys', 'less_keys', 'file_client_args',
              'backend_args', 'published_keys', 'save_begin', '_scope_'}


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
        raise SegkitError('train_dataloader.batch_sampler is set: its epoch length is '
                          'unknown')
    scheds = cfg.get('param_scheduler')
    if isinstance(scheds, dict) and 'type' not in scheds:
        raise SegkitError('param_scheduler per optimizer (a dict of lists) is not supported')
    scheds = [_plain(s) for s in ([scheds] if isinstance(scheds, dict) else scheds or [])]
    if not scheds:
        raise SegkitError('the source has no param_scheduler')
    ckpt = _plain((cfg.get('default_hooks') or {}).get('checkpoint') or {})
    if not ckpt:
        raise SegkitError('the source has no default_hooks.checkpoint')
    if set(ckpt) - _CKPT_ARGS:
        raise SegkitError(f'default_hooks.checkpoint.{sorted(set(ckpt) - _CKPT_ARGS)[0]} '
                          'has no epoch mapping')
    return train_cfg, loader, scheds, ckpt


def _warmup_end(scheds: list, max_iters: int) -> Optional[int]:
    """Source iteration where a leading LR warmup (Linear/Constant from 0) ends."""
    s = scheds[0]
    if (s.get('begin', 0) == 0 and s.get('end', max_iters) < max_iters
            and 'Momentum' not in str(s.get('type')) and s.get('param_name', 'lr') == 'lr'
            and _scheduler_kind(s.get('type')) in ('linear', 'constant')):
        return s['end']
    return None


def convert(src: str, gpus: int, batch: int, dataset_size: Optional[int] = None,
            epochs: Optional[int] = None, src_gpus: Optional[int] = None,
            save_best: Optional[str] = None, dst: Optional[str] = None) -> tuple:
    """(text of the epoch leaf config, :class:`Conversion`). Refuses with SegkitError.

    ``epochs`` stretches the whole schedule to that many epochs instead of keeping
    the source's number of samples; ``dst`` only decides how ``_base_`` points at
    ``src`` (relative to the written file).
    """
    for name, v in (('gpus', gpus), ('batch', batch), ('dataset_size', dataset_size),
                    ('epochs', epochs), ('src_gpus', src_gpus)):
        if v is not None and (not isinstance(v, int) or v < 1):
            raise SegkitError(f'{name} must be a positive integer, got {v!r}')
    cfg = load_config(src)
    train_cfg, loader, scheds, ckpt = _check_source(cfg, src)
    max_iters = train_cfg['max_iters']
    src_g, src_b = _src_batch(cfg, src, src_gpus)
    if dataset_size:
        n, how, note = dataset_size, 'given', 'given with --dataset-size'
    else:
        n, how, note = train_set_size(cfg)
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
    schedule_epochs = max_epochs if ends_on_epoch else epoch_value(sched_iters, length,
                                                                   exact=False)
    # positions that are knobs are written by name (edit the knob, both ends move)
    knobs = {sched_iters: _Ref('max_epochs' if ends_on_epoch else 'schedule_epochs')}
    warmup_src = _warmup_end(scheds, max_iters)
    warmup_j = None if warmup_src is None else _nearest(warmup_src * k)
    if warmup_j is not None and 0 < warmup_j and warmup_j not in knobs:
        knobs[warmup_j] = _Ref('warmup_epochs')
    else:
        warmup_src = warmup_j = None
    mapper = _Mapper(k, length, knobs)
    mapped = [x for i, s in enumerate(scheds)
              for x in _map_scheduler(i, s, max_iters, mapper)]

    def interval(it_count):  # whole epochs nearest the source's interval, in [1, max]
        exact = Fraction(it_count) * k / length
        return min(max_epochs, max(1, _nearest(exact))), float(exact)

    val_src = train_cfg.get('val_interval', 1000)  # IterBasedTrainLoop's default
    val_interval, val_exact = interval(val_src)
    ckpt_src = ckpt.get('interval', -1)
    ckpt_interval, ckpt_exact = interval(ckpt_src) if ckpt_src > 0 else (ckpt_src, None)
    metric, rule = _save_best(cfg, ckpt, save_best)
    notes = []
    if val_exact < 0.5 or (ckpt_exact is not None and ckpt_exact < 0.5):
        notes.append(f'an epoch ({length} it) is longer than the source\'s validation or '
                     'checkpoint interval: they happen once per epoch')
    if (loader.get('dataset') or {}).get('type') == 'RepeatDataset':
        notes.append(f'the train set is a RepeatDataset (times='
                     f'{loader["dataset"].get("times")}), so one epoch is {n} images; '
                     'unwrap it in the source for more, shorter epochs')
    if b0 != b1 and not epochs:
        notes.append(f'the LR is not rescaled for total batch {b1} (source {b0}): the same '
                     'LR at the same sample, as the schedule')
    info = Conversion(
        src=src, src_iters=max_iters, src_gpus=src_g, src_batch=src_b, gpus=gpus,
        batch=batch, dataset_size=n, dataset_how=how, dataset_note=note,
        epoch_length=length, scale=k, schedule_iters=sched_iters,
        schedule_epochs=schedule_epochs, max_epochs=max_epochs, val_interval=val_interval,
        checkpoint_interval=ckpt_interval,
        warmup_epochs=None if warmup_j is None else epoch_value(warmup_j, length, False),
        stretched=bool(epochs), save_best=metric, notes=notes, drop_last=drop_last,
        src_warmup_iters=warmup_src, src_val_interval=val_src, src_checkpoint_interval=ckpt_src)
    overrides = _overrides(cfg, info, train_cfg, loader, ckpt, rule)
    return _render(info, overrides, mapped, src, dst, src_gpus), info


def _overrides(cfg, info: Conversion, train_cfg: dict, loader: dict, ckpt: dict,
               rule: Optional[str]) -> dict:
    """The leaf's top-level dicts, knobs by name."""
    k, length = info.scale, info.epoch_length
    tc = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=_Ref('max_epochs'),
              val_interval=_Ref('val_interval'))
    if 'val_begin' in train_cfg:  # never validate before the source would
        tc['val_begin'] = max(1, math.ceil(Fraction(train_cfg['val_begin']) * k / length))
    sampler = loader.get('sampler') or {}
    samp = dict(_delete_=True, type='DefaultSampler', shuffle=sampler.get('shuffle', True))
    if 'seed' in sampler:
        samp['seed'] = sampler['seed']
    ck = dict(by_epoch=True, interval=_Ref('checkpoint_interval'), save_best=info.save_best)
    if rule:
        ck['rule'] = rule
    if 'save_begin' in ckpt:
        ck['save_begin'] = math.ceil(Fraction(ckpt['save_begin']) * k / length)
    backends = list(_plain((cfg.get('visualizer') or {}).get('vis_backends') or []))
    # TensorBoard is segkit's TensorboardHook (one run per work dir), not a backend
    backends = [b for b in backends if b.get('type') != 'TensorboardVisBackend']
    if 'LocalVisBackend' not in [b.get('type') for b in backends]:
        backends.append(dict(type='LocalVisBackend'))
    return dict(train_cfg=tc, train_dataloader=dict(batch_size=_Ref('samples_per_gpu'),
                                                    sampler=samp),
                checkpoint=ck, vis_backends=backends)


def _render(info: Conversion, o: dict, mapped: list, src: str, dst: Optional[str],
            src_gpus: Optional[int]) -> str:
    """The leaf config: header, _base_, knobs with their reasons, derived overrides."""
    length, j = info.epoch_length, info.schedule_iters
    knobs = [
        f'gpus = {info.gpus}  # launch on this many GPUs ({length} it per epoch)',
        f'samples_per_gpu = {info.batch}  # batch per GPU: {info.total_batch} per iteration '
        f'(source: {info.src_gpus} x {info.src_batch} = {info.src_total_batch})',
        (f'max_epochs = {info.max_epochs}  # --epochs: the stretched schedule ends here'
         if info.stretched else
         f'max_epochs = {info.max_epochs}  # ceil({j / length:.2f}): covers the source\'s '
         f'{info.src_iters} it'),
    ]
    if info.warmup_epochs is not None:
        wj = round(info.warmup_epochs * length)
        knobs.append(f'warmup_epochs = {info.warmup_epochs!r}  # source warmup '
                     f'{info.src_warmup_iters} it = {wj} it here = {wj / length:.3f} ep')
    else:
        knobs.append('# (no LR warmup at the start of the source schedule)')
    if j != info.max_iters:
        knobs.append(f'schedule_epochs = {info.schedule_epochs!r}  # the LR schedule ends: '
                     f'source {info.src_iters} it = {j} it here')
    val_exact = info.src_val_interval * info.scale / length
    knobs.append(f'val_interval = {info.val_interval}  # validate every {info.val_interval} '
                 f'ep (source: every {info.src_val_interval} it = {float(val_exact):.2f} ep)')
    ck_src = info.src_checkpoint_interval
    knobs.append(f'checkpoint_interval = {info.checkpoint_interval}  # checkpoint every '
                 f'{info.checkpoint_interval} ep (source: every {ck_src} it = '
                 f'{float(ck_src * info.scale / length):.2f} ep)' if ck_src > 0 else
                 f'checkpoint_interval = {info.checkpoint_interval}  # as in the source: '
                 'no periodic checkpoints')
    body = _header(info, src, dst, src_gpus) + [
        f"_base_ = ['{_base_entry(src, dst)}']", '',
        f'# --- knobs (the epoch values assume {info.gpus} GPUs x {info.batch}: to change '
        'those, re-run)', *knobs, '', '# --- derived from the knobs']
    body += _assign('train_cfg', o['train_cfg'])
    body += _assign('train_dataloader', o['train_dataloader'])
    body.append('param_scheduler = [')
    for out, comment in mapped:
        body.append(f'    # {comment}')
        body += _wrap('    ', _call(out) + ',')
    body.append(']')
    body += ['default_hooks = dict(',
             *_wrap('    ', f'checkpoint={_call(o["checkpoint"])},'),
             '    logger=dict(log_metric_by_epoch=True))']
    body += _assign('log_processor', dict(by_epoch=True))
    body += _wrap('', f'vis_backends = {_fmt(o["vis_backends"])}')
    body += _assign('visualizer', dict(vis_backends=_Ref('vis_backends')))
    return '\n'.join(body) + '\n'


def _header(info: Conversion, src: str, dst: Optional[str], src_gpus: Optional[int]) -> list:
    """The arithmetic, detectron2 style, as comment lines."""
    n, length, g, b = info.dataset_size, info.epoch_length, info.gpus, info.batch
    b0, b1, it, j = info.src_total_batch, info.total_batch, info.src_iters, info.schedule_iters
    per_rank = -(-n // g)
    out = [f'Epoch-based {Path(resolve_config(src)).name}: the same LR at the same number '
           'of samples seen (written by tools/iter2epoch.py).', '']
    if info.stretched:
        out += [f'{info.max_epochs} ep as asked (--epochs): the whole schedule of {it} it x '
                f'{b0} is stretched to {info.max_epochs} ep x {length} it = {j} it, so the LR '
                'at each fraction of training matches the source.']
    else:
        out += [f'{info.max_epochs} ep = {it} it x {b0} / {n} images = {it * b0 / n:.2f} ep, '
                'rounded up.',
                f'The LR schedule ends at {it} it x {b0} / {b1} per it = {j} it'
                f'{" (nearest)" if (it * b0) % b1 else ""} = {j / length:.2f} ep, where the '
                f'source ends; the last {info.max_iters - j} it run at its final LR.']
    out += [f'{length} it per epoch = {"floor" if info.drop_last else "ceil"}(ceil({n} / {g} '
            f'GPUs) / {b} per GPU)' + (f': DefaultSampler pads each GPU to {per_rank} images.'
                                       if per_rank * g != n else '.'),
            f'Dataset: {n} images, {info.dataset_note}.']
    out += [f'Note: {x}.' for x in info.notes]
    lines = []
    for para in out:
        lines += (textwrap.wrap(para, 92, initial_indent='# ', subsequent_indent='#   ',
                               break_on_hyphens=False) or ['#'])
    given = ''.join(f' --{key} {v}' for key, v in (
        ('dataset-size', info.dataset_size if info.dataset_how == 'given' else None),
        ('epochs', info.max_epochs if info.stretched else None), ('src-gpus', src_gpus)) if v)
    return lines + ['# Regenerate:',
                    f'#   python tools/iter2epoch.py {src} --gpus {g} --batch {b}{given} '
                    f'-o {dst or "THIS_FILE"} --force']


def _fmt(v) -> str:
    """Python source for a config value: dict(...) for dicts, knob names bare."""
    if isinstance(v, _Ref):
        return str(v)
    if isinstance(v, dict):
        if all(isinstance(k, str) and k.isidentifier() for k in v):
            return _call(v)
        return '{' + ', '.join(f'{k!r}: {_fmt(x)}' for k, x in v.items()) + '}'
    if isinstance(v, list):
        return '[' + ', '.join(_fmt(x) for x in v) + ']'
    if isinstance(v, tuple):
        return '(' + ', '.join(_fmt(x) for x in v) + (',)' if len(v) == 1 else ')')
    return repr(v)


def _call(kwargs: dict) -> str:
    return 'dict(' + ', '.join(f'{k}={_fmt(v)}' for k, v in kwargs.items()) + ')'


def _assign(name: str, value: dict) -> list:
    return _wrap('', f'{name} = {_call(value)}')


def _wrap(indent: str, text: str, width: int = 96) -> list:
    """Break a long ``x(...)`` after its top-level commas, hanging under the ``(``."""
    if len(indent + text) <= width:
        return [indent + text]
    hang = ' ' * (len(indent) + text.index('(') + 1)
    parts, depth, cur = [], 0, ''
    for ch in text:
        cur += ch
        depth += ch in '([{'
        depth -= ch in ')]}'
        if ch == ',' and depth == 1:
            parts.append(cur)
            cur = ''
    parts.append(cur)
    lines, line = [], indent
    for part in parts:
        if len(line) + len(part) > width and line.strip():
            lines.append(line.rstrip())
            line = hang + part.lstrip()
        else:
            line += part
    lines.append(line.rstrip())
    return lines


def write(src: str, dst: str, gpus: int, batch: int, dataset_size: Optional[int] = None,
          epochs: Optional[int] = None, src_gpus: Optional[int] = None,
          save_best: Optional[str] = None, force: bool = False) -> Conversion:
    """Convert and write ``dst`` once it loads and holds the epoch invariants."""
    from segkit.engine.epoch_checks import epoch_invariant_errors
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
