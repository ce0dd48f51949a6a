"""Training benchmark: the config's own ``model.train_step`` timed (CUDA synchronised,
warm-up excluded), split into *data wait* and *step*; setups run one after the other."""
from __future__ import annotations

import argparse
import copy
import functools
import gc
import itertools
import logging
import math
import os
import platform
import re
import shlex
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import torch

from segkit.bench import print_table, timed, write_json
from segkit.bench.flops import count_flops
from segkit.bench.synthetic import (build_model, crop_size_of, import_custom_modules,
                                    num_classes_of, synthetic_batch)
from segkit.engine.cli import add_cfg_options, add_speed_flags
from segkit.engine.config import iter_datasets, load_config
from segkit.engine.fast_paths import (AMP_WRAPPER, amp_of, apply_model_fast_paths,
                                      autocast_context, backend_flags, enable_fast_attention,
                                      resolve_fast_paths, set_amp, set_fused_optimizer)
from segkit.errors import SegkitError

OOM_TEXT = ('out of memory', "can't allocate memory", 'CUDNN_STATUS_ALLOC_FAILED',
            'CUBLAS_STATUS_ALLOC_FAILED')


@dataclass
class Setup:
    """One benchmarked configuration; ``switches``: the speed flags given (others keep the config's)."""
    config: str
    label: str = ''
    batch: Optional[int] = None
    size: Optional[tuple] = None  # override the crop size (quick CPU runs, tests)
    cfg_options: Optional[dict] = None
    switches: dict = field(default_factory=dict)

    def describe(self) -> str:
        parts = [os.path.basename(self.config).replace('.py', '')]
        for key in ('amp', 'compile', 'channels_last', 'fused', 'fast_attention', 'tf32'):
            value = self.switches.get(key)
            if value not in (None, False):
                parts.append(key if value is True else f'{key}={value}')
        return ' '.join(parts)


def quiet_mmengine() -> None:
    """mmengine logs every parameter's init at INFO: keep the terminal readable."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('mmengine')
    for item in (logger, *logger.handlers):
        item.setLevel(logging.WARNING)


def is_oom(err: BaseException) -> bool:
    return isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)) or (
        isinstance(err, RuntimeError) and any(t in str(err) for t in OOM_TEXT))


def free_memory(device: str) -> None:
    gc.collect()
    if device.startswith('cuda'):
        torch.cuda.empty_cache()


def reset_peak(device: str) -> bool:
    """Start a peak-memory window; False where the CPU high-water mark cannot be reset."""
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
        return True
    try:
        Path('/proc/self/clear_refs').write_text('5')
        return True
    except OSError:
        return False


def read_peak(device: str, was_reset: bool) -> dict:
    """Peak memory since :func:`reset_peak` (on CPU: VmHWM, else lifetime ``ru_maxrss``)."""
    if device.startswith('cuda'):
        return {'kind': 'cuda max_memory_allocated',
                'peak_bytes': int(torch.cuda.max_memory_allocated()),
                'peak_reserved_bytes': int(torch.cuda.max_memory_reserved())}
    try:
        hwm = re.search(r'^VmHWM:\s*(\d+)', Path('/proc/self/status').read_text(), re.M)
    except OSError:
        hwm = None
    if was_reset and hwm:
        return {'kind': 'cpu RSS high-water mark', 'peak_bytes': int(hwm[1]) * 1024}
    import resource
    return {'kind': 'cpu ru_maxrss (process lifetime)',
            'peak_bytes': int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024}


def _stats(values: list) -> dict:
    return {'median': statistics.median(values), 'mean': statistics.fmean(values),
            'min': min(values), 'max': max(values)}


def _rates(batch: int, times: list) -> dict:
    return {'img_per_s': batch / statistics.median(times),
            'img_per_s_mean': batch / statistics.fmean(times), 'iter_s': _stats(times)}


def device_info(device: str) -> dict:
    info = {'device': device, 'torch': torch.__version__, 'python': platform.python_version(),
            'cpu_threads': torch.get_num_threads()}
    if device.startswith('cuda'):
        props = torch.cuda.get_device_properties(torch.device(device))
        info.update(gpu=props.name, gpu_memory_bytes=int(props.total_memory),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    capability='.'.join(map(str, torch.cuda.get_device_capability(device))))
    else:
        info['cpu'] = platform.processor() or platform.machine()
    return info


def prepare(setup: Setup, device: str):
    """The config with the setup's switches applied: (cfg, FastPaths, amp, batch, size)."""
    cfg = load_config(setup.config, setup.cfg_options)
    fp = resolve_fast_paths(cfg, fused_optimizer=setup.switches.get('fused'),
                            **{k: setup.switches.get(k) for k in SETUP_FLAGS[3:]})
    set_amp(cfg, setup.switches.get('amp'), device)
    kind = device.split(':')[0]
    if cfg.optim_wrapper.get('type') == AMP_WRAPPER:
        cfg.optim_wrapper['device_type'] = kind
    fp.applied['fused_optimizer'] = set_fused_optimizer(cfg, fp.fused_optimizer, kind)
    size = tuple(setup.size) if setup.size else crop_size_of(cfg)
    if setup.size:
        cfg.model.data_preprocessor['size'] = size
    batch = int(setup.batch or cfg.train_dataloader.get('batch_size', 1))
    return cfg, fp, amp_of(cfg), batch, size


def bench_batch(num_classes: int, batch: int, size, seed: int = 0,
                classes_per_image: Optional[int] = 10) -> dict:
    """A synthetic batch with ``classes_per_image`` classes per label map (0/None: all):
    ADE20K images hold ~10 of 150, and Mask2Former's losses scale with the classes present."""
    data = synthetic_batch(num_classes, batch, size, seed=seed)
    if classes_per_image and classes_per_image < num_classes:
        g = torch.Generator().manual_seed(seed + 7919)
        for sample in data['data_samples']:
            label = sample.gt_sem_seg.data
            subset = torch.randperm(num_classes, generator=g)[:classes_per_image]
            keep = label != 255
            label[keep] = subset[label[keep] % classes_per_image]
    return data


def _data_iter(cfg, batch: int, make_batch: Optional[Callable]):
    """Endless batches: two synthetic ones in turn, else the config's train dataloader."""
    if make_batch:
        return itertools.cycle([make_batch(batch, seed=i) for i in range(2)]), 'synthetic'
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg['batch_size'] = batch
    if not loader_cfg.get('num_workers'):  # torch refuses persistent workers without any
        loader_cfg['persistent_workers'] = False
    for _, ds in iter_datasets(loader_cfg.get('dataset')):
        root = ds.get('data_root') or ''
        if root and not os.path.isdir(root):
            raise SegkitError(f'dataset {root} is missing: prepare it (tools/'
                              'prepare_data.py) or benchmark with --synthetic')
    import_custom_modules(cfg)  # the dataset registry: mmseg's scope, custom datasets
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    return (itertools.chain.from_iterable(itertools.repeat(loader)),
            f'dataloader ({loader_cfg.get("num_workers", 0)} workers)')


def _copy_batch(data: dict) -> dict:
    """train_step may edit the batch in place (data preprocessor): shallow copy."""
    return {k: list(v) if isinstance(v, list) else v for k, v in data.items()}


def inference_amp(cfg, amp: Optional[str], device: str) -> Optional[str]:
    """Inference autocast as mmengine's val loop runs it (only with ``val_cfg.fp16``). Never on
    CPU: bf16 autocast there recasts every weight per call, 1.3-1.45x fp32's time without AMX."""
    if not amp or not device.startswith('cuda'):
        return None
    return amp if (cfg.get('val_cfg') or {}).get('fp16') else None


def run_setup(setup: Setup, iters: int = 20, warmup: int = 5, device: str = 'cuda',
              synthetic: bool = True, infer_iters: Optional[int] = None,
              flops: bool = True, classes_per_image: Optional[int] = 10,
              log: Callable = print) -> dict:
    """Benchmark one setup; returns a JSON-ready dict (raises on OOM)."""
    from mmengine.optim import build_optim_wrapper

    import segkit.plugins.models.amp_safe as amp_safe
    if iters < 1:
        raise SegkitError('--iters must be >= 1')
    quiet_mmengine()
    cfg, fp, amp, batch, size = prepare(setup, device)
    optimizer = cfg.optim_wrapper.optimizer
    result = {'label': setup.label or 'run', 'setup': setup.describe(), 'config': setup.config,
              'batch': batch, 'size': list(size) if size else None, 'amp': amp,
              'iters': iters, 'warmup': warmup, 'optim_wrapper': cfg.optim_wrapper.get('type'),
              'optimizer': dict(type=optimizer.get('type'),
                                fused=bool(optimizer.get('fused', False))),
              'fast_paths': fp.to_cfg()}
    make_batch = functools.partial(bench_batch, num_classes_of(cfg), size=size,
                                   classes_per_image=classes_per_image)
    model = optim_wrapper = data_iter = None
    with backend_flags(fp.cudnn_benchmark, fp.tf32):
        try:
            amp_safe.patch()
            data_iter, result['data'] = _data_iter(  # fails fast
                cfg, batch, make_batch if synthetic else None)
            torch.manual_seed(0)
            with warnings.catch_warnings():  # mmseg's deprecation chatter
                warnings.simplefilter('ignore', UserWarning)
                model = build_model(cfg, device=device)
            if fp.fast_attention:
                enable_fast_attention(model)
            if flops:
                result['flops'] = dict(count_flops(model, cfg, size, device=device, amp=amp,
                                                   batch=make_batch(1, seed=123)))
            # fast attention is idempotent; compile/channels-last after FLOP counting
            result['applied'] = {**fp.applied, **apply_model_fast_paths(model, fp)}
            optim_wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
            model.train()
            waits, losses = [], []

            def train_iter():
                t0 = time.perf_counter()
                data = next(data_iter)
                data = _copy_batch(data) if synthetic else data
                waits.append(time.perf_counter() - t0)
                log_vars = model.train_step(data, optim_wrapper)
                losses.append(float(torch.as_tensor(log_vars['loss']).detach()))
            warm_times = timed(train_iter, warmup, device)  # the first: compile / autotuning
            if warmup:
                result['loss_first'] = losses[0]
            was_reset = reset_peak(device)
            times = timed(train_iter, iters, device)
            waits, losses = waits[warmup:], losses[warmup:]
            result['memory'] = read_peak(device, was_reset)
            result['train'] = {
                **_rates(batch, times), 'data_wait_s': _stats(waits),
                'step_s': _stats([t - w for t, w in zip(times, waits)]),
                'data_wait_share': sum(waits) / max(sum(times), 1e-12),
                'loss_last': losses[-1], 'losses_finite': all(map(math.isfinite, losses)),
                'warmup_iter_s': warm_times}
            skipped = getattr(optim_wrapper, 'skipped_steps', None)
            if skipped is not None:
                result['train']['amp_skipped_steps'] = skipped
            if flops:  # training FLOPs measured, else 3x forward
                used = int(result['flops'].get('train') or 3 * result['flops']['forward'])
                result['flops']['train_per_image_used'] = used
                result['train']['achieved_tflops'] = used * result['train']['img_per_s'] / 1e12
            # ---- inference: model.test_step (preprocess, forward, resize, argmax)
            n_inf = infer_iters if infer_iters is not None else max(2, iters // 2)
            if n_inf > 0:
                infer = make_batch(batch, seed=99)
                infer_amp = inference_amp(cfg, amp, device)
                model.eval()
                with torch.no_grad(), autocast_context(infer_amp, device.split(':')[0]):
                    def infer_iter():
                        model.test_step(_copy_batch(infer))
                    timed(infer_iter, 2, device)  # warm-up: cuDNN / oneDNN kernels
                    times = timed(infer_iter, n_inf, device)
                model.train()
                result['inference'] = {'autocast': infer_amp, **_rates(batch, times),
                                       'mode': 'test_step'}
        finally:
            del model, optim_wrapper, data_iter
            free_memory(device)
    log(f"  {result['label']} ({result['setup']}): {result['train']['img_per_s']:.2f} img/s "
        f"train, peak {result['memory']['peak_bytes'] / 2**30:.2f} GiB")
    return result


def compare(a: dict, b: dict) -> dict:
    """Setup B vs setup A."""
    def ratio(part, key):
        x, y = ((s.get(part) or {}).get(key) for s in (b, a))
        return (x / y) if (x is not None and y) else None
    return {'a': a['label'], 'b': b['label'],
            'train_img_per_s_ratio': ratio('train', 'img_per_s'),
            'memory_ratio': ratio('memory', 'peak_bytes'),
            'inference_img_per_s_ratio': ratio('inference', 'img_per_s'),
            'loss_last_a': a['train']['loss_last'], 'loss_last_b': b['train']['loss_last']}


def find_max_batch(setup: Setup, device: str = 'cuda', start: Optional[int] = None,
                   cap: int = 256, mem_limit_bytes: Optional[int] = None,
                   iters: int = 10, warmup: int = 3, synthetic: bool = True,
                   classes_per_image: Optional[int] = 10, log: Callable = print) -> dict:
    """Largest batch that trains (doubling from ``start``, then bisection), each try on a fresh
    model and optimizer (an OOM can leave their state half-updated); then a full run at it."""
    common = dict(device=device, synthetic=synthetic, infer_iters=0, flops=False,
                  classes_per_image=classes_per_image)
    tries = []

    def fits(batch: int) -> bool:
        res = None
        try:
            res = run_setup(replace(setup, batch=batch), iters=2, warmup=1,
                            log=lambda *_: None, **common)
        except Exception as err:  # noqa: BLE001
            if not is_oom(err):
                raise
        if res is None:  # out of memory; the exception (and its frames) is gone now
            free_memory(device)
            tries.append({'batch': batch, 'fits': False, 'reason': 'out of memory'})
            log(f'  batch {batch}: out of memory')
            return False
        peak = res['memory']['peak_bytes']
        ok = mem_limit_bytes is None or peak <= mem_limit_bytes
        tries.append({'batch': batch, 'fits': ok, 'peak_bytes': peak,
                      'img_per_s': res['train']['img_per_s'],
                      'reason': None if ok else 'over --mem-limit'})
        log(f'  batch {batch}: {"fits" if ok else "over the memory limit"}, '
            f'peak {peak / 2**30:.2f} GiB, {res["train"]["img_per_s"]:.2f} img/s')
        return ok

    b, lo, hi = max(1, int(start or 1)), 0, None
    while b <= cap and lo < cap and hi is None:  # double
        if fits(b):
            lo, b = b, min(b * 2, cap)
        else:
            hi = b
    while hi is not None and hi - lo > 1:  # bisect (below the start if even it failed)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    out = {'max_batch': lo, 'cap': cap, 'capped': hi is None and lo == cap,
           'mem_limit_bytes': mem_limit_bytes, 'tries': tries}
    if lo >= 1:
        out['at_max'] = run_setup(replace(setup, batch=lo), iters=iters, warmup=warmup,
                                  log=log, **common)
    return out


# metric, a setup's value, its B / A key in report['compare'], digits (4: significant)
TABLE_ROWS = (
    ('batch', lambda s: s['batch'], None, 0),
    ('amp / fused / compile', lambda s: f"{s['amp'] or 'fp32'} / "
     f"{'fused' if s['optimizer']['fused'] else '-'} / {s['fast_paths']['compile'] or '-'}",
     None, None),
    ('train img/s (median)', lambda s: s['train']['img_per_s'], 'train_img_per_s_ratio', 2),
    ('train img/s (mean)', lambda s: s['train']['img_per_s_mean'], None, 2),
    ('iter ms (median)', lambda s: s['train']['iter_s']['median'] * 1e3, None, 1),
    ('  data wait ms', lambda s: s['train']['data_wait_s']['median'] * 1e3, None, 2),
    ('  step ms', lambda s: s['train']['step_s']['median'] * 1e3, None, 1),
    ('peak memory GiB', lambda s: s['memory']['peak_bytes'] / 2**30, 'memory_ratio', 3),
    ('inference img/s', lambda s: s['inference']['img_per_s'], 'inference_img_per_s_ratio', 2),
    ('GFLOP/img forward', lambda s: s['flops']['forward'] / 1e9, None, 4),
    ('GFLOP/img train', lambda s: s['flops']['train_per_image_used'] / 1e9, None, 4),
    ('achieved TFLOP/s', lambda s: s['train']['achieved_tflops'], None, 3),
    ('loss (last)', lambda s: s['train']['loss_last'], None, 4),
)


def _fmt(get: Callable, digits=2, unit='') -> str:
    """``get()`` formatted ('-' where missing); digits None: text, 4: significant."""
    try:
        value = get()
    except (KeyError, TypeError):
        value = None
    if value is None or digits is None:
        return value or '-'
    return f'{value:.4g}{unit}' if digits == 4 else f'{value:.{digits}f}{unit}'


def print_report(report: dict) -> None:
    """A table with one column per setup, plus B/A when comparing."""
    setups, cmp = report['setups'], report.get('compare')
    rows = [[name, *(_fmt(lambda: get(s), digits) for s in setups),
             *([_fmt(lambda: cmp.get(key), unit='x') if key else ''] if cmp else [])]
            for name, get, key, digits in TABLE_ROWS]
    before = [f"{s['label']}: {s['setup']}  [{s['optim_wrapper']}, {s['optimizer']['type']}"
              f"{' fused' if s['optimizer']['fused'] else ''}, {s['data']}, "
              f"applied: {s.get('applied')}]" for s in setups]
    after = []
    fmb = report.get('find_max_batch')
    if fmb:
        tput = ((fmb.get('at_max') or {}).get('train') or {}).get('img_per_s')
        after.append(f"largest batch per device: {fmb['max_batch']}"
                     f"{' (reached --max-batch cap)' if fmb.get('capped') else ''}"
                     f"{f', {tput:.2f} img/s' if tput else ''}")
    gpu = report['env'].get('gpu')
    print_table(f"training benchmark ({report['env']['device']}{', ' + gpu if gpu else ''})",
                ['metric', *(s['label'] for s in setups), *(['B / A'] if cmp else [])],
                rows, before, after)


# the flags of a setup: the batch, then its switches (from the fourth on, FastPaths fields)
SETUP_FLAGS = ('batch', 'amp', 'fused', 'compile', 'compile_mode', 'compile_backend',
               'channels_last', 'cudnn_benchmark', 'tf32', 'fast_attention')


def _flag_values(args) -> dict:
    """The setup flags given (not None), ``--compile none`` as False."""
    values = {k: getattr(args, k) for k in SETUP_FLAGS if getattr(args, k) is not None}
    if values.get('compile') == 'none':
        values['compile'] = False
    return values


def _setup_flag_parser(add_help: bool = True):
    p = argparse.ArgumentParser(add_help=add_help)
    p.add_argument('--batch', type=int, help="images per iteration (default: the "
                   "config's train_dataloader.batch_size)")
    add_speed_flags(p)
    return p


def build_parser():
    p = argparse.ArgumentParser(
        prog='tools/benchmark.py', parents=[_setup_flag_parser(add_help=False)],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Training throughput of a config: real train steps (its model, loss '
        'and optimizer wrapper), img/s, data wait vs step, peak memory, inference img/s, '
        'FLOPs and achieved TFLOP/s. Switches not given keep what the config says.',
        epilog='examples:\n'
        '  tools/benchmark.py CONFIG --synthetic --amp bf16 --json out.json\n'
        '  tools/benchmark.py mmseg::segformer/segformer_mit-b2_8xb2-160k_ade20k-512x512.py '
        '--synthetic --batch 6 \\\n'
        '      --compare configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512_amp.py\n'
        '  tools/benchmark.py CONFIG --synthetic --compare-flags "--amp bf16 --compile"\n'
        '  tools/benchmark.py CONFIG --synthetic --find-max-batch')
    p.add_argument('config', help='config file (or mmseg::path/in/model/zoo.py)')
    p.add_argument('--iters', type=int, default=20, help='timed iterations (default 20)')
    p.add_argument('--warmup', type=int, default=5,
                   help='untimed iterations first (default 5; compile needs more)')
    p.add_argument('--synthetic', action='store_true',
                   help="random batches of the config's crop size (no dataset needed); "
                   "default: the config's real train dataloader")
    group = p.add_mutually_exclusive_group()
    group.add_argument('--compare', metavar='CONFIG2',
                       help='also benchmark CONFIG2 (same flags) and print B/A ratios')
    group.add_argument('--compare-flags', metavar='"FLAGS"',
                       help='also benchmark CONFIG with these flags changed, e.g. '
                       '"--amp bf16 --compile"')
    p.add_argument('--classes-per-image', type=int, default=10,
                   help='--synthetic: classes in each label map (default 10, about '
                   "ADE20K's; 0 = all; drives Mask2Former's matching/loss cost)")
    p.add_argument('--find-max-batch', action='store_true',
                   help='search the largest batch that fits (doubling, then bisection)')
    p.add_argument('--max-batch', type=int, default=256,
                   help='upper bound of --find-max-batch (default 256)')
    p.add_argument('--mem-limit-gb', type=float,
                   help='--find-max-batch: also count a batch as not fitting when its '
                   'peak memory passes this (GiB)')
    p.add_argument('--infer-iters', type=int,
                   help='inference iterations (default iters/2; 0 = skip)')
    p.add_argument('--no-flops', action='store_true', help='skip FLOP counting')
    p.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'),
                   help='override the crop size (quick CPU runs)')
    p.add_argument('--device', choices=['cuda', 'cpu'],
                   help='default: cuda when available')
    p.add_argument('--json', metavar='OUT', help='write the full report here')
    add_cfg_options(p)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if '--compare-flags' in argv[:-1]:  # its value starts with --: one token for argparse
        i = argv.index('--compare-flags')
        argv[i:i + 2] = [f'--compare-flags={argv[i + 1]}']
    args = build_parser().parse_args(argv)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cuda' and not torch.cuda.is_available():
        raise SegkitError('--device cuda: no CUDA device visible')
    flags = _flag_values(args)
    setups = [Setup(args.config, batch=flags.pop('batch', None), switches=flags,
                    size=tuple(args.size) if args.size else None, cfg_options=args.cfg_options)]
    if args.compare:
        setups.append(replace(setups[0], config=args.compare))
    elif args.compare_flags:
        changes = _flag_values(_setup_flag_parser().parse_args(shlex.split(args.compare_flags)))
        if not changes:
            raise SegkitError(f'--compare-flags {args.compare_flags!r} changes nothing')
        setups.append(replace(setups[0], batch=changes.pop('batch', setups[0].batch),
                              switches={**setups[0].switches, **changes}))
    if len(setups) == 2:
        setups[0].label, setups[1].label = 'A', 'B'
    print(f'[segkit] benchmarking on {device}: {args.iters} timed + {args.warmup} warm-up '
          f'iterations, {"synthetic batches" if args.synthetic else "real dataloader"}',
          flush=True)
    common = dict(device=device, synthetic=args.synthetic,
                  classes_per_image=args.classes_per_image)
    report = {'tool': 'segkit benchmark', 'version': 1, 'env': device_info(device),
              'args': dict(vars(args)),
              'setups': [run_setup(setup, iters=args.iters, warmup=args.warmup,
                                   infer_iters=args.infer_iters, flops=not args.no_flops,
                                   **common) for setup in setups]}
    if len(setups) == 2:
        report['compare'] = compare(*report['setups'])
    if args.find_max_batch:
        print('[segkit] searching the largest batch ...', flush=True)
        limit = int(args.mem_limit_gb * 2**30) if args.mem_limit_gb else None
        target = setups[-1]
        report['find_max_batch'] = dict(
            setup=target.label or target.describe(),
            **find_max_batch(target, start=report['setups'][-1]['batch'], cap=args.max_batch,
                             mem_limit_bytes=limit, iters=max(3, args.iters // 2),
                             warmup=args.warmup, **common))
    print_report(report)
    if args.json:
        write_json(args.json, report)
        print(f'[segkit] JSON: {args.json}')
    return 0
