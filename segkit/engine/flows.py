"""The train and test flows behind ``tools/train.py`` and ``tools/test.py``: mmseg's flow
(config -> cfg-options -> work dir -> mmengine Runner) plus segkit's guard rails."""
from __future__ import annotations

import json
import os
import os.path as osp
from contextlib import contextmanager
from pathlib import Path

from segkit.engine import dist as sk_dist
from segkit.engine import workdir_lock
from segkit.engine.cli import set_resume_hint, shell_command
from segkit.engine.config import load_config, parse_config_name, resolve_class_weight_files, set_max_epochs
from segkit.engine.config_types import type_rows
from segkit.engine.console import header
from segkit.engine.fast_paths import apply_fast_paths
from segkit.engine.preflight import epoch_size, preflight, raise_first_failure
from segkit.engine.resume import checkpoint_problem, resolve_resume
from segkit.engine.run_record import write_run_record
from segkit.errors import SegkitError, one_line
from segkit.io import remove_stale_temporaries

_SAFETY_HOOKS = ('PerClassMetricsHook', 'NonFiniteLossHook', 'ScheduleFollowsConfigHook')
_PEER_LOST = ('Connection closed by peer', 'Connection reset by peer', 'timed out',
              'Timeout', 'NCCL', 'gloo', 'Broken pipe', 'ProcessGroup')


def log(msg: str) -> None:
    """Print on rank 0 only (every rank runs the same flow)."""
    if sk_dist.rank() == 0:
        print(f'[segkit] {msg}', flush=True)


def _walk_evaluators(cfg):
    for key in ('val_evaluator', 'test_evaluator'):
        ev = cfg.get(key)
        yield from (item for item in (ev if isinstance(ev, (list, tuple)) else [ev])
                    if isinstance(item, dict))


def prepare_config(args):
    """Load the config and apply what every segkit run needs."""
    import segkit.plugins  # noqa: F401  registers segkit's hooks, metric, models (heavy: mmseg)
    from segkit.plugins.tensorboard import adopt
    cfg = load_config(args.config, args.cfg_options)
    raise_first_failure(type_rows(cfg))  # before anything computes with the values
    resolve_class_weight_files(cfg.model)
    if args.work_dir is not None:  # mmseg's rule: CLI > config > work_dirs/<stem>
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    for ev in _walk_evaluators(cfg):  # foreign configs (mmseg's zoo): per-class metrics too
        if ev.get('type') == 'IoUMetric':
            ev['type'] = 'PerClassIoUMetric'
    hooks = list(cfg.get('custom_hooks') or [])
    hooks += [dict(type=t) for t in _SAFETY_HOOKS if not any(h.get('type') == t for h in hooks)]
    cfg.custom_hooks = hooks
    adopt(cfg)  # one TensorBoard run per work dir (foreign configs too)
    ckpt = (cfg.get('default_hooks') or {}).get('checkpoint')
    if ckpt and ckpt.get('type') == 'CheckpointHook':
        ckpt['type'] = 'SafeCheckpointHook'  # atomic saves, resumable best
    # torch refuses persistent workers without workers (common after --cfg-options)
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if loader and loader.get('num_workers', 0) == 0 and loader.get('persistent_workers'):
            loader['persistent_workers'] = False
    return cfg


def check_launch_batch(cfg, config_path: str, world: int) -> None:
    """Warn (a launch may differ on purpose) when it differs from the name's GxbB or ``num_gpus``."""
    batch = cfg.train_dataloader.get('batch_size', 1)
    actual = world * batch
    name = parse_config_name(config_path)
    if name and name.total_batch != actual:
        log(f'WARNING: this launch trains {world} process(es) x {batch} images = {actual} '
            f'per iteration, but the config is named for {name.gpus}x{name.batch} = '
            f'{name.total_batch}: each epoch takes {name.total_batch / actual:.2f}x the '
            'iterations (add --auto-scale-lr to scale the LR to this batch)')
    knob = cfg.get('num_gpus')
    if knob and knob != world:
        log(f'WARNING: the config sets num_gpus = {knob} but this launch runs {world} '
            'process(es): launch with that many (tools/dist_train.sh CONFIG '
            f'{knob}), or set num_gpus to match')


def apply_auto_scale_lr(cfg, config_path: str, world: int) -> None:
    """lr x total batch / ``auto_scale_lr.base_batch_size`` (mmengine's), else the name's GxbB."""
    name = parse_config_name(config_path)
    base = (cfg.get('auto_scale_lr') or {}).get('base_batch_size')
    if base:
        source = 'auto_scale_lr.base_batch_size'
    elif name:
        base, source = name.total_batch, f"the config name's {name.gpus}x{name.batch}"
    else:
        raise SegkitError('--auto-scale-lr: the config sets no auto_scale_lr.base_batch_size '
                          '(the batch its LR was tuned for) and its name has no GxbB; add '
                          'auto_scale_lr = dict(enable=False, base_batch_size=N)')
    actual = world * cfg.train_dataloader.get('batch_size', 1)
    lr = cfg.optim_wrapper.get('optimizer', {}).get('lr')
    cfg.auto_scale_lr = dict(enable=True, base_batch_size=base)  # mmengine scales it
    new = f'{lr * actual / base:.4g}' if lr is not None else '?'
    log(f'--auto-scale-lr: batch {actual} (this launch: {world} x '
        f'{actual // world}) / {base} ({source}) -> lr x {actual / base:.4g}: {lr} -> {new}')


def guard_fresh_run(work_dir: str) -> None:
    """A run without --resume must not overwrite an earlier run's checkpoints."""
    wd = Path(work_dir)
    ckpts = sorted(p.name for p in wd.glob('*.pth'))
    if ckpts or (wd / 'last_checkpoint').exists():
        raise SegkitError(
            f'{work_dir} already holds checkpoints of an earlier run ({", ".join(ckpts[:3])}'
            f'{"..." if len(ckpts) > 3 else ""}): continue it with --resume, or start a '
            'new run with --work-dir NEW_DIR')


def build_runner(cfg):
    from segkit.plugins.runner import PlainRunner  # quiet console
    if 'runner_type' in cfg:
        from mmseg.registry import RUNNERS
        return RUNNERS.build(cfg)
    return PlainRunner.from_cfg(cfg)


@contextmanager
def config_errors():
    """Before the Runner exists, any exception (a config value nothing checked) is one line."""
    try:
        yield
    except SegkitError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise SegkitError(f'the config cannot be used ({one_line(exc)}): a value of an '
                          'unexpected type or shape? python tools/doctor.py CONFIG checks it'
                          ) from None


@contextmanager
def distributed_errors():
    """A rank whose peer died exits now with one line (not a traceback or NCCL's timeout)."""
    try:
        yield
    except RuntimeError as exc:  # torch's DistError is a RuntimeError
        if not sk_dist.initialized() or not any(p in str(exc) for p in _PEER_LOST):
            raise
        raise SegkitError(
            f'rank {sk_dist.rank()} of {sk_dist.world_size()}: lost contact with another '
            f'rank ({one_line(exc, 160)}); that rank died or hung, so this one stops too. '
            "Check the other ranks' output, then restart with --resume") from None


def train(args) -> int:
    with config_errors():
        cfg, load_from = _train_checks(args)
    if args.preflight_only:
        log('preflight passed')
        return 0
    # preflight passed: only now is anything written into the work dir
    if sk_dist.rank() == 0:
        workdir_lock.acquire(cfg.work_dir)
        for stale in remove_stale_temporaries(cfg.work_dir):
            log(f'removed {stale}: a partial save from a killed run')
    set_resume_hint(cfg.work_dir)
    runner = build_runner(cfg)
    if runner.rank == 0:
        for line in header(runner, args.config, sk_dist.world_size()):
            log(line)
        write_run_record(runner.log_dir, cfg, extra={'mode': 'train', 'resumed_from': load_from})
    with distributed_errors():
        runner.train()
    set_resume_hint(None)
    if runner.rank == 0:
        work_dir = Path(runner.work_dir)
        best = sorted(work_dir.glob('best_*.pth'))
        log(f'work dir:    {work_dir}')
        if best:
            log(f'best:        {best[-1]}')
        log(f'TensorBoard: {work_dir / "tensorboard"}  '
            f'({shell_command(["scripts/tensorboard.sh", work_dir])})')
    return 0


def _train_checks(args):
    cfg = prepare_config(args)
    # the speed flags (cli.add_speed_flags); flags left unset (None) keep the config's choice
    apply_fast_paths(cfg, amp=args.amp, compile={'none': False}.get(args.compile, args.compile),
                     compile_mode=args.compile_mode, compile_backend=args.compile_backend,
                     channels_last=args.channels_last, fused_optimizer=args.fused,
                     cudnn_benchmark=args.cudnn_benchmark, fast_attention=args.fast_attention,
                     tf32=args.tf32)
    sk_dist.setup_distributed(cfg, args.launcher)
    world = sk_dist.world_size()
    if sk_dist.rank() == 0:  # a live run there: say so before anything else
        workdir_lock.check_unlocked(cfg.work_dir)
    if args.max_epochs:  # stretch the schedule (config.set_max_epochs)
        old = cfg.train_cfg.max_epochs
        set_max_epochs(cfg, args.max_epochs, epoch_size(cfg, world)[1])
        log(f'--max-epochs {args.max_epochs}: schedule stretched x{args.max_epochs / old:.3g} '
            f'(was {old} epochs)')
    resume, load_from = resolve_resume(args.resume, cfg.work_dir, logger=log)
    cfg.resume = resume
    if resume:
        cfg.load_from = load_from
    else:
        guard_fresh_run(cfg.work_dir)
    check_launch_batch(cfg, args.config, world)
    if args.auto_scale_lr:
        apply_auto_scale_lr(cfg, args.config, world)
    if not args.no_preflight:
        preflight(cfg, mode='train', launcher=args.launcher, world=world,
                  partial_weights=args.partial_weights)
    return cfg, load_from


def test(args) -> int:
    with config_errors():
        cfg = prepare_config(args)
        if not os.path.isfile(args.checkpoint):
            raise SegkitError(f'checkpoint {args.checkpoint} does not exist')
        problem = checkpoint_problem(Path(args.checkpoint))
        if problem:
            raise SegkitError(f'checkpoint {args.checkpoint} is {problem}')
        cfg.load_from, cfg.resume = args.checkpoint, False
        if args.show or args.show_dir:
            hook = cfg.default_hooks.get('visualization')
            if hook is None:
                raise SegkitError('--show/--show-dir need default_hooks.visualization '
                                  "(dict(type='SegVisualizationHook'))")
            hook['draw'] = True
            if args.show:
                hook.update(show=True, wait_time=args.wait_time)
            if args.show_dir:
                cfg.visualizer['save_dir'] = args.show_dir
        if args.tta:
            cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
            cfg.tta_model.module = cfg.model
            cfg.model = cfg.tta_model
        if args.out is not None:
            for ev in _walk_evaluators(cfg):
                ev.update(output_dir=args.out, keep_results=True)
        sk_dist.setup_distributed(cfg, args.launcher)
        preflight(cfg, mode='test', launcher=args.launcher, world=sk_dist.world_size(),
                  partial_weights=args.partial_weights)
    if args.preflight_only:
        log('preflight passed')
        return 0
    if args.out is not None:
        os.makedirs(args.out, exist_ok=True)
    runner = build_runner(cfg)
    with distributed_errors():
        metrics = runner.test() or {}
    if runner.rank == 0:
        from mmengine.logging import MessageHub

        from segkit.plugins.per_class import INFO_KEY
        info = MessageHub.get_current_instance().get_info(INFO_KEY)
        out = Path(args.metrics_json or Path(runner.log_dir) / 'test_metrics.json')
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {'config': args.config, 'checkpoint': args.checkpoint,
                   'metrics': {k: float(v) for k, v in metrics.items()}, 'per_class': info}
        out.write_text(json.dumps(payload, indent=1) + '\n')
        if info:
            print_per_class(info, metrics)
        log(f'metrics JSON: {out}')
        if args.out:
            log(f'predictions:  {args.out}')
    return 0


def print_per_class(info: dict, metrics: dict, console=None) -> None:
    """A rich table of per-class IoU / Acc / share of ground-truth pixels."""
    from rich.console import Console
    from rich.table import Table
    console = console or Console()
    total = sum(info['gt_pixels']) or 1
    ious = sorted(v for v in info['IoU'] if v is not None)
    worst = ious[: max(1, len(ious) // 5)]
    table = Table(title='per-class results', show_edge=True)
    table.add_column('class')
    for col in ('IoU', 'Acc', 'GT pixels'):
        table.add_column(col, justify='right')
    for name, iou, acc, px in zip(info['classes'], info['IoU'], info['Acc'], info['gt_pixels']):
        iou_s = '—' if iou is None else f'{iou:.2f}'
        if iou is not None and iou in worst:
            iou_s = f'[bold red]{iou_s}[/]'
        table.add_row(str(name), iou_s, '—' if acc is None else f'{acc:.2f}',
                      f'{100 * px / total:.2f}%')
    console.print(table)
    console.print('[bold]' + '  '.join(f'{k}: {v:.2f}' for k, v in metrics.items()
                                       if k in ('aAcc', 'mIoU', 'mAcc')) + '[/]')
