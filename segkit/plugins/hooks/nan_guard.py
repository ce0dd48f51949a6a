"""Stop at the first non-finite loss, keeping the last good checkpoint."""
from __future__ import annotations

import math

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from segkit.errors import SegkitError


class NonFiniteLossError(SegkitError):
    """The loss went NaN or Inf."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """After each iteration, check every logged loss term. On NaN/Inf, stop with a
    one-line message naming the epoch, the iteration and the terms that went bad,
    before any checkpoint hook can save the broken weights (this runs first).

    Under fp16 AMP with dynamic loss scaling an overflowing step is not fatal: the
    scaler skips it (weights unchanged) and halves the scale. Up to
    ``max_skipped_steps`` consecutive skips are logged and tolerated; more, or any
    non-finite loss without fp16 scaling, is a real divergence.
    """
    priority = 'ABOVE_NORMAL'

    def __init__(self, max_skipped_steps: int = 20):
        self.max_skipped_steps = max_skipped_steps
        self.skipped = 0
        self.total_skipped = 0

    @staticmethod
    def _fp16_scaler(runner):
        wrapper = runner.optim_wrapper
        scaler = getattr(wrapper, 'loss_scaler', None)
        dtype = getattr(wrapper, 'cast_dtype', None)
        import torch
        if scaler is None or dtype == torch.bfloat16:
            return None
        return scaler

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        bad = {}
        for name, value in (outputs or {}).items():
            if 'loss' not in name:
                continue
            v = float(value.detach()) if hasattr(value, 'detach') else float(value)
            if not math.isfinite(v):
                bad[name] = v
        if not bad:
            self.skipped = 0
            return
        where = (f'epoch {runner.epoch + 1}, iteration {runner.iter + 1} '
                 f'({batch_idx + 1} of the epoch)')
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        scaler = self._fp16_scaler(runner)
        if scaler is not None and self.skipped < self.max_skipped_steps:
            self.skipped += 1
            self.total_skipped += 1
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
