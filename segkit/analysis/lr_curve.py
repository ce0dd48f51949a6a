"""The LR a run followed against the LR its config schedules, rebuilt with mmengine's
own schedulers. The logged ``base_lr`` (with several parameter groups) is the schedule
itself and is compared first; the logged ``lr`` (the first group's, with its lr_mult and
any auto-scale) only without it, allowing a constant ratio."""
from __future__ import annotations

import math
import warnings
from itertools import takewhile
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from segkit.plugins.hooks.resume_schedule import step_one_iteration

# A logged LR differs from the configured one when |logged - configured| exceeds
# this fraction of the configured peak LR (the logs round nothing; 1 % leaves room
# for float noise and warmup ratios, and catches any real change of schedule).
LR_TOLERANCE = 0.01


@dataclass
class LRCheck:
    """The logged LR of one sub-run against its config.py's schedule."""
    subrun: str
    key: str  # 'base_lr' or 'lr'
    steps: list  # logged iterations
    logged: list
    configured: list
    peak: float  # configured peak LR
    max_error: float  # max |logged - configured| / peak
    first_bad: Optional[int] = None  # first iteration beyond LR_TOLERANCE
    follows_previous: bool = False  # the checkpoint's (previous sub-run's) schedule
    notes: list = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return self.first_bad is None


@dataclass
class ScheduleEnd:
    """Where the configured LR schedule ends against where training ends."""
    max_epochs: int
    end_epoch: Optional[float]  # last LR scheduler's end, in epochs (None: open-ended)
    final_lr: Optional[float]  # configured LR at the last iteration
    peak_lr: Optional[float]


def optimizer_lr(cfg) -> Optional[float]:
    opt = (cfg.get('optim_wrapper') or {}).get('optimizer') or cfg.get('optimizer') or {}
    lr = opt.get('lr')
    return float(lr) if isinstance(lr, (int, float)) else None


def _schedulers(cfg) -> list:
    s = cfg.get('param_scheduler') or []
    return [dict(x) for x in ([s] if isinstance(s, dict) else s)]


def configured_lr(cfg, epoch_length: int, n_iters: Optional[int] = None,
                  lr: Optional[float] = None) -> np.ndarray:
    """LR of iterations 1..n_iters (default: all) as ``RuntimeInfoHook`` logs it, from ``lr``."""
    import torch
    from mmengine.optim import OptimWrapper

    import mmseg.engine  # noqa: F401 - mmseg's schedulers (PolyLRRatio) registered
    from mmseg.registry import PARAM_SCHEDULERS
    lr = optimizer_lr(cfg) if lr is None else lr
    if lr is None:
        raise ValueError('the config sets no optim_wrapper.optimizer.lr')
    n = int(n_iters or int(cfg.train_cfg.get('max_epochs') or 0) * epoch_length)
    wrapper = OptimWrapper(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr,
                                           momentum=0.9))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        scheds = [PARAM_SCHEDULERS.build(s, default_args=dict(optimizer=wrapper,
                                                              epoch_length=epoch_length))
                  for s in _schedulers(cfg)]
        group = wrapper.optimizer.param_groups[0]
        out = np.empty(n)
        for i in range(n):
            out[i] = group['lr']
            step_one_iteration(scheds, i, epoch_length)
    return out


def _compare(steps, logged, expected, peak) -> tuple:
    exp = np.array([expected[s - 1] for s in steps])
    err = np.abs(np.array(logged) - exp) / (peak if peak > 0 else 1.0)
    bad = np.nonzero(err > LR_TOLERANCE)[0]
    return exp, float(err.max()) if len(err) else 0.0, (steps[bad[0]] if len(bad) else None)


def check_subrun(sr, cfg, previous=None) -> Optional[LRCheck]:
    """Compare one sub-run's logged LR with its config.py; ``previous`` = (cfg,
    epoch_length) of the sub-run it resumed, tried when they differ."""
    points = [p for p in sr.train if (p.base_lr if p.base_lr is not None else p.lr) is not None]
    if not points or not sr.epoch_length or cfg is None or optimizer_lr(cfg) is None:
        return None
    key = 'base_lr' if all(p.base_lr is not None for p in points) else 'lr'
    steps = [p.iter for p in points]
    logged = [getattr(p, key) for p in points]
    start_lr = optimizer_lr(cfg)
    asl = cfg.get('auto_scale_lr') or {}
    if key == 'lr' and asl.get('enable') and asl.get('base_batch_size'):
        # the factor mmengine's auto_scale_lr applies to the parameter groups
        world = int(sr.record.get('world_size') or 1)
        batch = (cfg.get('train_dataloader') or {}).get('batch_size', 1)
        start_lr *= world * batch / asl['base_batch_size']
    try:
        sched = configured_lr(cfg, sr.epoch_length, n_iters=max(steps), lr=start_lr)
    except Exception as err:  # noqa: BLE001 - an unknown scheduler: say so, go on
        return LRCheck(sr.name, key, steps, logged, [], 0.0, 0.0,
                       notes=[f'the configured schedule could not be rebuilt '
                              f'({type(err).__name__}: {err})'])
    peak = float(sched.max()) if len(sched) else 0.0
    exp, max_err, first_bad = _compare(steps, logged, sched, peak)
    chk = LRCheck(sr.name, key, steps, logged, exp.tolist(), peak, max_err, first_bad)
    if first_bad is not None and key == 'lr':
        ratios = [g / e for g, e in zip(logged, exp) if e > 0 and g > 0]
        if ratios and max(ratios) - min(ratios) <= LR_TOLERANCE * max(ratios) and \
                len(ratios) == sum(1 for e in exp if e > 0):
            chk.first_bad = None
            chk.notes.append(f'the first parameter group runs at {np.median(ratios):.3g}x the '
                             'configured LR (its lr_mult, or --auto-scale-lr)')
    if chk.first_bad is not None and previous is not None:
        pcfg, plen = previous
        try:
            prev = configured_lr(pcfg, plen or sr.epoch_length, n_iters=max(steps),
                                 lr=start_lr)
            chk.follows_previous = _compare(steps, logged, prev, peak)[2] is None
        except Exception:  # noqa: BLE001
            pass
    return chk


def schedule_end(cfg, epoch_length: Optional[int]) -> Optional[ScheduleEnd]:
    """Where the last LR scheduler ends (epochs) and the LR at the last iteration."""
    max_epochs = (cfg.get('train_cfg') or {}).get('max_epochs')
    if not max_epochs:
        return None
    ends = []
    for s in _schedulers(cfg):
        t = str(s.get('type', ''))
        if 'Momentum' in t or not (t.endswith(('LR', 'LRRatio')) or
                                   s.get('param_name', 'lr') == 'lr'):
            continue  # not an LR scheduler
        end = s.get('end')
        if end is None or (isinstance(end, float) and math.isinf(end)) or end >= 1e9:
            ends.append(None)
        elif s.get('by_epoch', True):
            ends.append(float(end))
        elif epoch_length:
            ends.append(float(end) / epoch_length)
    end_epoch = None if (not ends or None in ends) else max(ends)
    final = peak = None
    if epoch_length:
        try:
            sched = configured_lr(cfg, epoch_length)
            final, peak = float(sched[-1]), float(sched.max())
        except Exception:  # noqa: BLE001
            pass
    return ScheduleEnd(int(max_epochs), end_epoch, final, peak)


def trailing_minimum(points: list, epoch_length: Optional[int]) -> Optional[tuple]:
    """(iterations, epochs, lr) the merged log spent at its minimum LR at the end, or None."""
    lrs = [(p.iter, p.lr) for p in points if p.lr is not None]
    if len(lrs) < 2:
        return None
    peak, low = max(v for _, v in lrs), min(v for _, v in lrs)
    if peak <= 0 or peak - low <= 1e-6 * peak:
        return None  # a constant LR: no schedule to reach the end of
    at_low = list(takewhile(lambda x: x[1] - low <= 1e-6 * peak, reversed(lrs)))
    if not at_low:
        return None
    # counted from the first logged step at the minimum: a lower bound (the LR may
    # have got there up to one logging interval earlier)
    n = lrs[-1][0] - at_low[-1][0] + 1
    return n, (n / epoch_length if epoch_length else None), low
