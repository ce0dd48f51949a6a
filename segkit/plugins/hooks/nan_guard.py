"""Stop at the first non-finite loss, keeping the last good checkpoint."""
from __future__ import annotations

import math

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from segkit.errors import SegkitError


class NonFiniteLossError(SegkitError):
    """The loss went NaN or Inf."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """On a NaN/Inf loss term, stop with one line naming the epoch, iteration and terms,
    before any checkpoint hook can save the broken weights (this runs first). Under fp16
    AMP with dynamic loss scaling the scaler skips an overflowing step (weights unchanged):
    up to ``max_skipped_steps`` consecutive skips are logged and tolerated."""
    priority = 'ABOVE_NORMAL'

    def __init__(self, max_skipped_steps: int = 20):
        self.max_skipped_steps = max_skipped_steps
        self.skipped = 0  # consecutive fp16-skipped steps

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        values = {k: float(v.detach()) if hasattr(v, 'detach') else float(v)
                  for k, v in (outputs or {}).items() if 'loss' in k}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if not bad:
            self.skipped = 0
            return
        where = (f'epoch {runner.epoch + 1}, iteration {runner.iter + 1} '
                 f'({batch_idx + 1} of the epoch)')
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
        if getattr(runner.optim_wrapper, 'cast_dtype', None) == torch.bfloat16:
            scaler = None  # bf16: no fp16 overflow to skip
        if scaler is not None and self.skipped < self.max_skipped_steps:
            self.skipped += 1
            runner.logger.warning(
                f'fp16 overflow at {where} ({terms}): the step was skipped, loss scale '
                f'now {scaler.get_scale():g} ({self.skipped} in a row, stop after '
                f'{self.max_skipped_steps})')
            return
        last = runner.message_hub.get_info('last_ckpt')
        kept = f'the last good checkpoint is {last}' if last else 'no checkpoint was saved yet'
        why = (f'{self.skipped} fp16-skipped steps in a row before it, so not an overflow; '
               if scaler is not None else '')
        raise NonFiniteLossError(
            f'non-finite loss at {where}: {terms}; {why}stopped before saving, {kept} '
            '(resume it with --resume). Lower the LR, clip gradients '
            '(optim_wrapper.clip_grad=dict(max_norm=1.0)) or check the data '
            '(python tools/validate_dataset.py CONFIG)')
