"""The LR range test behind ``tools/lr_finder.py``: the config's model, pipeline and optimizer
(``paramwise_cfg`` too) train while every group's LR grows exponentially by the same factor, until
the smoothed loss exceeds ``DIVERGE_FACTOR`` x its best. Writes only the curve (JSON) and its plot."""
from __future__ import annotations

import itertools
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from segkit.analysis.plots import pyplot
from segkit.bench.synthetic import import_custom_modules
from segkit.engine import dist as sk_dist
from segkit.engine.config import parse_config_name
from segkit.errors import SegkitError
from segkit.io import atomic_write

DEFAULT_ITERS = 200
START_FACTOR = 1e-2  # default start: the config's lr / 100
END_FACTOR = 1e4  # default end: the config's lr x 10,000 (AdamW diverges late)
SMOOTHING = 0.9  # EMA weight of the past (about the last 10 iterations)
DIVERGE_FACTOR = 4.0  # stop when the smoothed loss > 4 x its best
SKIP_START = 0.1  # the first 10% of the sweep are too noisy for the suggestion
RULE = ('steepest descent of the smoothed loss against log10(lr) (the most negative '
        'slope of a 5-point fit, before the loss minimum and after the first '
        f'{int(100 * SKIP_START)}% of the sweep)')


@dataclass
class LRCurve:
    config: str
    base_lr: float  # the config's optimizer lr
    start_lr: float
    end_lr: float
    iters: int  # planned
    world_size: int
    batch_per_process: int
    lr: list = field(default_factory=list)  # the optimizer lr at each step
    loss: list = field(default_factory=list)  # raw (mean over processes)
    smoothed: list = field(default_factory=list)
    lr_mult: list = field(default_factory=list)  # group lr / optimizer lr, per group
    group_lr: list = field(default_factory=list)  # each group's lr at the last step
    stopped: str = ''  # why the sweep ended
    suggested_lr: Optional[float] = None
    rule: str = RULE
    min_loss_lr: Optional[float] = None  # the lr at the smoothed minimum
    seconds: float = 0.0

    @property
    def total_batch(self) -> int:
        return self.world_size * self.batch_per_process


def suggest(lrs: list, smoothed: list) -> tuple:
    """(suggested lr by RULE, lr at the loss minimum); None where the curve is too short."""
    if len(lrs) < 10:
        return None, None
    x, y = np.log10(np.asarray(lrs)), np.asarray(smoothed)
    i_min = int(np.argmin(y))
    lo = int(SKIP_START * len(y))
    if i_min - lo < 5:
        return None, float(lrs[i_min])
    # 5-point least-squares slopes
    _, best = min((np.polyfit(x[i:i + 5], y[i:i + 5], 1)[0], i + 2)
                  for i in range(lo, i_min - 4))
    return float(lrs[best]), float(lrs[i_min])


def _cycle(loader):
    for epoch in itertools.count():
        if hasattr(getattr(loader, 'sampler', None), 'set_epoch'):
            loader.sampler.set_epoch(epoch)
        yield from loader


def build_parts(cfg, launcher: str):
    """(model, optim_wrapper, train dataloader) as mmengine's Runner builds them."""
    import torch
    from mmengine.logging import MMLogger
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner
    from mmseg.registry import MODELS

    MMLogger.get_instance('segkit_lr_finder', log_level='WARNING')  # no per-param lines
    import_custom_modules(cfg)
    sk_dist.setup_distributed(cfg, launcher)
    if launcher != 'none' and torch.cuda.is_available():
        from mmengine.dist import init_dist
        init_dist(launcher, **cfg.get('env_cfg', {}).get('dist_cfg', {}))
    seed = (cfg.get('randomness') or {}).get('seed')
    if seed is not None:
        from mmengine.runner import set_random_seed
        set_random_seed(seed)
    device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', 0))) \
        if torch.cuda.is_available() else torch.device('cpu')
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(device)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    if sk_dist.world_size() > 1:
        from mmengine.model import MMDistributedDataParallel
        model = MMDistributedDataParallel(
            module=model, device_ids=None if device.type == 'cpu' else [device.index],
            broadcast_buffers=False, find_unused_parameters=cfg.get(
                'find_unused_parameters', False))
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=seed)
    return model, optim_wrapper, loader


def run_range_test(cfg, config: str, start_lr: Optional[float] = None,
                   end_lr: Optional[float] = None, iters: int = DEFAULT_ITERS,
                   launcher: str = 'none', progress=None) -> LRCurve:
    """Sweep the LR; ``progress(text)`` hears about every tenth step."""
    import torch
    from mmengine.dist import all_reduce

    base = (cfg.get('optim_wrapper') or {}).get('optimizer', {}).get('lr')
    if not base:
        raise SegkitError(f'{config} sets no optim_wrapper.optimizer.lr: the range test '
                          'scales the optimizer\'s LR; add one')
    start, end = start_lr or base * START_FACTOR, end_lr or base * END_FACTOR
    if not 0 < start < end:
        raise SegkitError(f'--start-lr {start:g} must be positive and below --end-lr {end:g}')
    if iters < 10:
        raise SegkitError(f'--iters {iters}: at least 10 are needed for a curve')
    model, ow, loader = build_parts(cfg, launcher)
    groups = ow.optimizer.param_groups
    group_base = [g['lr'] for g in groups]
    curve = LRCurve(config, float(base), float(start), float(end), iters,
                    sk_dist.world_size(), int(cfg.train_dataloader.get('batch_size', 1)),
                    lr_mult=[g / base for g in group_base])
    model.train()
    t0 = time.time()
    best, avg = math.inf, 0.0
    data = _cycle(loader)
    for i in range(iters):
        lr = start * (end / start) ** (i / (iters - 1))  # exponential: start ... end
        for g, b in zip(groups, group_base):
            g['lr'] = b * lr / base  # the same factor for every group: ratios kept
        log_vars = model.train_step(next(data), ow)
        loss = torch.tensor([float(log_vars['loss'].detach())], dtype=torch.float64)
        all_reduce(loss, op='mean')  # over the processes
        loss = float(loss)
        if not math.isfinite(loss):
            curve.stopped = f'loss not finite at step {i + 1} (lr {lr:.3g})'
            break
        avg = SMOOTHING * avg + (1 - SMOOTHING) * loss
        s = avg / (1 - SMOOTHING ** (i + 1))  # EMA, bias-corrected
        best = min(best, s)
        curve.lr.append(lr)
        curve.loss.append(loss)
        curve.smoothed.append(s)
        if progress and (i % max(1, iters // 10) == 0 or i == iters - 1):
            progress(f'step {i + 1}/{iters}  lr {lr:.3g}  loss {loss:.4f}  '
                     f'smoothed {s:.4f}')
        if i > SKIP_START * iters and s > DIVERGE_FACTOR * best:
            curve.stopped = (f'diverged at step {i + 1} (lr {lr:.3g}): smoothed loss '
                             f'{s:.3g} > {DIVERGE_FACTOR:g} x its best {best:.3g}')
            break
    else:
        curve.stopped = (f'reached --end-lr {end:.3g} without diverging (the loss never '
                         f'exceeded {DIVERGE_FACTOR:g} x its best): try a higher --end-lr')
    curve.seconds = time.time() - t0
    curve.group_lr = [g['lr'] for g in groups]  # read back: the ratios held
    curve.suggested_lr, curve.min_loss_lr = suggest(curve.lr, curve.smoothed)
    return curve


def default_out_dir(config: str) -> Path:
    return Path('work_dirs') / 'lr_finder' / Path(config).stem


def advice_lines(curve: LRCurve, cfg) -> list:
    """The suggestion as a --cfg-options, the knob edit, and the linear scaling."""
    lr = curve.suggested_lr
    if lr is None:
        return []
    launch = f'{curve.world_size} process(es) x {curve.batch_per_process} images'
    lines = [f'suggested lr: {lr:.3g}',
             f'  rule: {curve.rule}',
             f'  (smoothed-loss minimum at lr {curve.min_loss_lr:.3g}; min/10 = '
             f'{curve.min_loss_lr / 10:.3g} is the other common rule)',
             f'  config lr now: {curve.base_lr:g}',
             f'for this launch ({launch} = total batch {curve.total_batch}):',
             f'  --cfg-options optim_wrapper.optimizer.lr={lr:.3g}']
    # (GPUs, images per GPU) the config is written for: its knobs, else the GxbB of its name
    if cfg.get('num_gpus') and cfg.get('samples_per_gpu'):
        planned = int(cfg.num_gpus), int(cfg.samples_per_gpu)
    else:
        name = parse_config_name(curve.config)
        planned = (name.gpus, name.batch) if name else None
    if planned:
        g, b = planned
        scaled = lr * g * b / curve.total_batch
        same = g * b == curve.total_batch
        lines += [f"for the config's batch (num_gpus {g} x samples_per_gpu {b} = {g * b})"
                  + ('' if same else f', linear scaling x {g * b}/{curve.total_batch}') + ':',
                  f'  knob edit at the top of {curve.config}:  lr = {scaled:.3g}']
        if not same:
            lines.append(f'  (or --cfg-options optim_wrapper.optimizer.lr={scaled:.3g} '
                         f'when launched as {g} x {b})')
    else:
        lines.append(f'  knob edit at the top of {curve.config}:  lr = {lr:.3g}  (the '
                     'config names no GPUs x batch: found for this launch\'s batch)')
    return lines


def plot_curve(curve: LRCurve, out) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(curve.lr, curve.loss, lw=0.8, alpha=0.35, label='loss')
    ax.plot(curve.lr, curve.smoothed, lw=1.8, label=f'smoothed (EMA {SMOOTHING:g})')
    if curve.suggested_lr:
        ax.axvline(curve.suggested_lr, color='tab:green', ls='--',
                   label=f'suggested {curve.suggested_lr:.3g}')
    ax.axvline(curve.base_lr, color='grey', ls=':', label=f'config lr {curve.base_lr:g}')
    ax.set(xscale='log', xlabel='learning rate (optimizer lr; every group scaled alike)',
           ylabel='train loss')
    if curve.smoothed:
        lo = min(curve.smoothed)
        ax.set_ylim(lo * 0.9, min(max(curve.loss), DIVERGE_FACTOR * lo * 1.1))
    ax.grid(alpha=0.3, which='both')
    ax.legend(fontsize=8)
    ax.set_title(f'LR range test: {Path(curve.config).stem}', fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100, format='png')
    plt.close(fig)


def write_outputs(curve: LRCurve, out_dir: Path) -> tuple:
    """(JSON path, PNG path) under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js, png = out_dir / 'lr_finder.json', out_dir / 'lr_finder.png'
    text = json.dumps(asdict(curve), indent=1) + '\n'
    atomic_write(str(js), lambda tmp: Path(tmp).write_text(text))
    atomic_write(str(png), lambda tmp: plot_curve(curve, tmp), suffix='.png')
    return js, png
