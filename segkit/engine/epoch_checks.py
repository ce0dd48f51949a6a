"""The invariants every epoch-based training config must hold (an InfiniteSampler never
ends an epoch; without convert_to_iter_based the LR moves once per epoch; an ``end`` left
in iterations runs the schedule 1000x too long)."""
from __future__ import annotations


def _get(cfg, dotted: str) -> dict:
    for key in dotted.split('.'):
        cfg = cfg.get(key) or {}
    return cfg


def epoch_invariant_errors(cfg) -> list[str]:
    """Everything that makes ``cfg`` not a sound epoch-based config ([] = sound)."""
    errors = []
    train_cfg = cfg.get('train_cfg') or {}
    if train_cfg.get('type') != 'EpochBasedTrainLoop':
        errors.append(f"train_cfg.type is {train_cfg.get('type')!r}, not 'EpochBasedTrainLoop'")
    max_epochs = train_cfg.get('max_epochs')
    if not isinstance(max_epochs, int) or max_epochs < 1:
        errors.append(f'train_cfg.max_epochs must be a positive int, got {max_epochs!r}')
        max_epochs = None
    val_interval = train_cfg.get('val_interval')
    if val_interval is not None and max_epochs and not 1 <= val_interval <= max_epochs:
        errors.append(f'train_cfg.val_interval {val_interval} is outside [1, {max_epochs}]')
    sampler = _get(cfg, 'train_dataloader.sampler').get('type')
    if sampler != 'DefaultSampler':
        errors.append(f'train_dataloader.sampler.type is {sampler!r}, not '
                      "'DefaultSampler' (InfiniteSampler never ends an epoch)")
    scheds = cfg.get('param_scheduler') or []
    scheds = [scheds] if isinstance(scheds, dict) else list(scheds)
    if not scheds:
        errors.append('param_scheduler is empty')
    for i, s in enumerate(scheds):
        where = f"param_scheduler[{i}] ({s.get('type')})"
        if s.get('by_epoch') is not True:
            errors.append(f'{where}: by_epoch must be True')
        if s.get('convert_to_iter_based') is not True:
            errors.append(f'{where}: convert_to_iter_based must be True (else the LR '
                          'moves once per epoch)')
        for key in ('begin', 'end'):
            if s.get(key) is None:
                errors.append(f'{where}: {key} must be set in epochs')
            elif max_epochs and not 0 <= s[key] <= max_epochs:
                errors.append(f'{where}: {key}={s[key]} is outside [0, max_epochs={max_epochs}]')
        if s.get('begin') is not None and s.get('end') is not None and s['begin'] >= s['end']:
            errors.append(f"{where}: begin {s['begin']} >= end {s['end']}")
    ckpt = _get(cfg, 'default_hooks.checkpoint')
    if ckpt.get('by_epoch') is not True:
        errors.append('default_hooks.checkpoint.by_epoch must be True')
    if not ckpt.get('save_best'):
        errors.append('default_hooks.checkpoint.save_best is not set')
    if _get(cfg, 'default_hooks.logger').get('log_metric_by_epoch') is not True:
        errors.append('default_hooks.logger.log_metric_by_epoch must be True')
    if _get(cfg, 'log_processor').get('by_epoch') is not True:
        errors.append('log_processor.by_epoch must be True')
    return errors  # TensorBoard: tools/train.py adds segkit's TensorboardHook to every config
