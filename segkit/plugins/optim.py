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
    """mmengine's AmpOptimWrapper that also runs on CPU (bf16 autocast), needs no
    loss scaler for bf16, and tells a skipped fp16-overflow step from a real
    non-finite loss.

    Args:
        dtype: 'bfloat16' (default) or 'float16'.
        loss_scale: 'auto' (dynamic for fp16, none for bf16), 'dynamic', a float
            (static), a dict of GradScaler arguments, or None (no scaling).
        device_type: 'cuda' / 'cpu'; default: cuda when available.

    After each :meth:`update_params` (device tensors: read without a host sync
    unless someone asks):
        ``last_step_skipped``: the GradScaler skipped the optimizer step because the
        scaled gradients overflowed (the dynamic scale went down). Benign in fp16
        unless it repeats. A static ``loss_scale`` is never seen to skip.
        ``last_loss_finite``: the loss itself was finite. A non-finite loss is a real
        problem (loss scaling cannot cause it), skipped step or not.
        ``skipped_steps`` / ``consecutive_skips``: counters for a NaN guard.
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
                from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler
                make = ShardedGradScaler
            else:
                make = functools.partial(torch.amp.GradScaler, self.device_type)
            if loss_scale == 'dynamic':
                self.loss_scaler = make()
            elif isinstance(loss_scale, float):
                self._scale_update_param = loss_scale
                self.loss_scaler = make(init_scale=loss_scale)
            elif isinstance(loss_scale, dict):
                self.loss_scaler = make(**loss_scale)
            else:
                raise SegkitError(f'loss_scale must be auto, dynamic, a number, a dict or '
                                  f'None, got {loss_scale!r}')
        self.cast_dtype = getattr(torch, name)
        self._last_loss = self._last_found_inf = None
        self._skipped_total = self._consecutive = None

    # -- what a NaN guard reads
    @property
    def last_loss_finite(self) -> bool:
        """The last loss was finite (non-finite: a real problem, whatever the AMP)."""
        return True if self._last_loss is None else bool(torch.isfinite(self._last_loss).all())

    @property
    def last_step_skipped(self) -> bool:
        """The GradScaler skipped the last optimizer step (fp16 gradient overflow)."""
        return False if self._last_found_inf is None else bool(self._last_found_inf > 0)

    @property
    def skipped_steps(self) -> int:
        return 0 if self._skipped_total is None else int(self._skipped_total)

    @property
    def consecutive_skips(self) -> int:
        return 0 if self._consecutive is None else int(self._consecutive)

    def step_status(self) -> str:
        """'ok', 'skipped_overflow' (benign fp16 overflow) or 'nonfinite_loss'."""
        if not self.last_loss_finite:
            return 'nonfinite_loss'
        return 'skipped_overflow' if self.last_step_skipped else 'ok'

    @property
    def loss_scale(self) -> Optional[float]:
        return None if self.loss_scaler is None else float(self.loss_scaler.get_scale())

    # -- training
    def backward(self, loss: torch.Tensor, **kwargs):
        self._last_loss = loss.detach()
        if self.loss_scaler is not None:
            return super().backward(loss, **kwargs)
        loss.backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs):
        if self.loss_scaler is None:
            if self.clip_grad_kwargs:
                self._clip_grad()
            self.optimizer.step(**kwargs)
            return
        # dynamic scaling halves the scale after an overflow-skipped step
        before = self.loss_scaler._scale.clone() if self.loss_scaler._scale is not None \
            else None
        super().step(**kwargs)
        after = self.loss_scaler._scale
        found = (after < before).float() if before is not None and after is not None \
            else torch.zeros(())
        self._last_found_inf = found
        self._skipped_total = found if self._skipped_total is None else \
            self._skipped_total + found
        self._consecutive = found if self._consecutive is None else \
            (self._consecutive + found) * found

    # -- checkpoints (no scaler: the optimizer's state alone)
    def state_dict(self) -> dict:
        if self.loss_scaler is None:
            return OptimWrapper.state_dict(self)
        return super().state_dict()

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
