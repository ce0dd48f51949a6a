"""``SegkitAmpOptimWrapper``: mmengine's AmpOptimWrapper that also runs on CPU (bf16)
and tells a skipped fp16-overflow step from a real non-finite loss."""
from __future__ import annotations

import contextlib
import functools
from typing import Optional

import torch
import torch.nn as nn
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from segkit.engine.fast_paths import AMP_WRAPPER, default_device
from segkit.errors import SegkitError


@OPTIM_WRAPPERS.register_module(name=AMP_WRAPPER, force=True)
class SegkitAmpOptimWrapper(AmpOptimWrapper):
    """Args: ``dtype`` 'bfloat16' (default) or 'float16'; ``loss_scale`` 'auto' (dynamic for
    fp16, none for bf16), 'dynamic', a float (static), a dict of GradScaler arguments or None;
    ``device_type`` 'cuda' / 'cpu' (default: cuda when available).

    After each step a NaN guard reads (device tensors, no host sync unless asked):
    ``last_step_skipped`` (the GradScaler skipped the step on an fp16 overflow: benign unless
    it repeats; a static scale never shows it), ``last_loss_finite`` (a non-finite loss is a
    real problem, skipped step or not), ``skipped_steps`` and ``consecutive_skips``.
    """

    def __init__(self, loss_scale='auto', dtype='bfloat16', device_type=None,
                 use_fsdp: bool = False, **kwargs):
        import segkit.plugins.models.amp_safe as amp_safe
        amp_safe.patch()  # Mask2Former's fragile parts in fp32 (idempotent)
        name = str(dtype).replace('torch.', '')
        if name not in self.valid_dtypes:
            raise SegkitError(f'SegkitAmpOptimWrapper: dtype {dtype!r} is not one of '
                              f'{self.valid_dtypes}')
        self.device_type = device_type or default_device()
        if self.device_type == 'cpu' and name == 'float16':
            raise SegkitError('fp16 autocast on CPU is not supported: use bf16 '
                              '(--amp bf16) or a GPU')
        if self.device_type == 'cuda' and name == 'bfloat16' and \
                not torch.cuda.is_bf16_supported():
            raise SegkitError('this GPU has no bf16: use --amp fp16')
        if loss_scale == 'auto':
            loss_scale = 'dynamic' if name == 'float16' else None
        if isinstance(loss_scale, int):
            loss_scale = float(loss_scale)
        # mmengine's __init__ asserts a GPU and builds torch.cuda's scaler (disabled on
        # CPU): the scaler is built here for the device, the rest is mmengine's
        OptimWrapper.__init__(self, **kwargs)
        self.loss_scaler, self._scale_update_param = None, None
        if loss_scale is not None:
            if use_fsdp:
                from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler as make
            else:
                make = functools.partial(torch.amp.GradScaler, self.device_type)
            if isinstance(loss_scale, float):
                self._scale_update_param = loss_scale
                loss_scale = dict(init_scale=loss_scale)
            elif loss_scale == 'dynamic':
                loss_scale = {}
            elif not isinstance(loss_scale, dict):
                raise SegkitError(f'loss_scale must be auto, dynamic, a number, a dict or '
                                  f'None, got {loss_scale!r}')
            self.loss_scaler = make(**loss_scale)
        self.cast_dtype = getattr(torch, name)
        # python zeros until the first step, then device tensors (read without a host sync)
        self._last_loss = None
        self._last_found_inf = self._skipped_total = self._consecutive = 0

    @property
    def last_loss_finite(self) -> bool:
        """The last loss was finite (non-finite: a real problem, whatever the AMP)."""
        return True if self._last_loss is None else bool(torch.isfinite(self._last_loss).all())

    @property
    def last_step_skipped(self) -> bool:
        """The GradScaler skipped the last optimizer step (fp16 gradient overflow)."""
        return bool(self._last_found_inf > 0)

    @property
    def skipped_steps(self) -> int:
        return int(self._skipped_total)

    @property
    def consecutive_skips(self) -> int:
        return int(self._consecutive)

    def step_status(self) -> str:
        """'ok', 'skipped_overflow' (benign fp16 overflow) or 'nonfinite_loss'."""
        if not self.last_loss_finite:
            return 'nonfinite_loss'
        return 'skipped_overflow' if self.last_step_skipped else 'ok'

    @property
    def loss_scale(self) -> Optional[float]:
        return None if self.loss_scaler is None else float(self.loss_scaler.get_scale())

    def _base(self):
        """mmengine's AMP wrapper with a loss scaler, the plain one without (bf16)."""
        return OptimWrapper if self.loss_scaler is None else AmpOptimWrapper

    def backward(self, loss: torch.Tensor, **kwargs):
        self._last_loss = loss.detach()
        self._base().backward(self, loss, **kwargs)

    def step(self, **kwargs):
        if self.loss_scaler is None:
            return OptimWrapper.step(self, **kwargs)
        # dynamic scaling halves the scale after an overflow-skipped step
        before = self.loss_scaler._scale.clone() if self.loss_scaler._scale is not None \
            else None
        super().step(**kwargs)
        after = self.loss_scaler._scale
        found = (after < before).float() if before is not None and after is not None \
            else torch.zeros(())
        self._last_found_inf = found
        self._skipped_total = self._skipped_total + found
        self._consecutive = (self._consecutive + found) * found

    def state_dict(self) -> dict:
        return self._base().state_dict(self)

    def load_state_dict(self, state_dict: dict):
        state_dict = dict(state_dict)
        if self.loss_scaler is None:
            state_dict.pop('loss_scaler', None)
        super().load_state_dict(state_dict)

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module):
        with OptimWrapper.optim_context(self, model), \
                torch.autocast(device_type=self.device_type, dtype=self.cast_dtype):
            yield
