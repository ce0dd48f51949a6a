"""segkit's runners: a quiet console, and ``fast_paths`` (:mod:`segkit.engine.fast_paths`)."""
from __future__ import annotations

import copy

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from segkit.engine.fast_paths import (RUNNER, FastPaths, apply_model_fast_paths,
                                      set_backend_flags, set_fused_optimizer)


class QuietConsole:
    """The config / environment / paramwise dumps to the log file, not the console."""

    def build_logger(self, *args, **kwargs):
        from segkit.engine.console import quiet_console
        return quiet_console(super().build_logger(*args, **kwargs))


@RUNNERS.register_module()
class PlainRunner(QuietConsole, Runner):
    """mmengine's Runner with a quiet console (configs without a runner_type)."""


@RUNNERS.register_module(name=RUNNER, force=True)
class SegkitRunner(QuietConsole, Runner):
    """mmengine's Runner plus ``cfg.fast_paths``: fused optimizer and backend flags
    resolved for the device, model switches applied before DDP wraps the model."""

    @classmethod
    def from_cfg(cls, cfg):
        cfg = copy.deepcopy(cfg)
        fp = FastPaths.from_cfg(cfg)
        if cfg.get('optim_wrapper'):
            set_fused_optimizer(cfg, fp.fused_optimizer)
        cfg.setdefault('env_cfg', {})['cudnn_benchmark'] = bool(fp.cudnn_benchmark)
        return super().from_cfg(cfg)

    def build_model(self, model):
        import segkit.plugins.models.amp_safe as amp_safe
        amp_safe.patch()
        model = super().build_model(model)
        fp = FastPaths.from_cfg(self.cfg)
        set_backend_flags(fp.cudnn_benchmark, fp.tf32)
        if fp.channels_last or fp.compile or fp.fast_attention:
            from mmengine.logging import print_log
            applied = apply_model_fast_paths(model, fp)
            print_log(f'segkit fast paths: {applied}', logger='current')
        return model
