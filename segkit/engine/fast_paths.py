"""Training fast paths (AMP, fused optimizer, cuDNN benchmark, TF32, fast attention, channels-last,
torch.compile) for train.py and benchmark.py: ``fast_paths`` + ``runner_type = 'SegkitRunner'``."""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Optional, Union

import torch
import torch.nn as nn

from segkit.errors import SegkitError

AMP_DTYPES = {'fp16': 'float16', 'bf16': 'bfloat16'}
COMPILE_TARGETS = ('auto', 'backbone', 'model')
FUSED_OPTIMIZERS = ('Adam', 'AdamW', 'SGD')
AMP_WRAPPER = 'SegkitAmpOptimWrapper'
RUNNER = 'SegkitRunner'


@dataclass
class FastPaths:
    """The model/process-level switches (AMP lives in the optimizer wrapper)."""
    compile: Union[bool, str] = False
    compile_mode: Optional[str] = None      # torch.compile(mode=...)
    compile_backend: str = 'inductor'
    channels_last: bool = False
    fused_optimizer: Union[bool, str, None] = 'auto'  # None: as the optimizer cfg says
    cudnn_benchmark: bool = True
    tf32: bool = True
    fast_attention: bool = True
    applied: dict = field(default_factory=dict)  # what was actually done (reports)

    @classmethod
    def from_cfg(cls, cfg) -> 'FastPaths':
        known = {k: v for k, v in dict(cfg.get('fast_paths') or {}).items() if k in SWITCHES}
        # cuDNN autotuning is set once, in env_cfg (the runtime base)
        known.setdefault('cudnn_benchmark', bool((cfg.get('env_cfg') or {}).get(
            'cudnn_benchmark', True)))
        return cls(**known)

    def to_cfg(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k in SWITCHES}


SWITCHES = set(FastPaths.__dataclass_fields__) - {'applied'}


def normalize_compile(value) -> Union[bool, str]:
    if value in (None, False, 'none', 'off', 'false', ''):
        return False
    if value is True or value in ('true', 'on'):
        return 'auto'
    if value not in COMPILE_TARGETS:
        raise SegkitError(f'compile={value!r}: use one of {", ".join(COMPILE_TARGETS)}')
    return value


def default_device() -> str:
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def set_amp(cfg, amp: Optional[str], device: Optional[str] = None) -> None:
    """``amp``: None keeps the config's choice (mmengine's AmpOptimWrapper becomes segkit's,
    same behaviour plus CPU bf16 and the skipped-step flag); 'fp32' off; 'fp16' / 'bf16' on."""
    ow = cfg.optim_wrapper
    kind = ow.get('type', 'OptimWrapper')
    if kind not in ('OptimWrapper', 'AmpOptimWrapper', AMP_WRAPPER):
        raise SegkitError(f"--amp needs optim_wrapper.type 'OptimWrapper' (or an AMP "
                          f"wrapper); the config has {kind!r}")
    on_cpu = (device or default_device()) == 'cpu'
    if amp is None:
        if kind == 'AmpOptimWrapper':  # keep mmengine's defaults: fp16, dynamic scaling
            ow['type'] = AMP_WRAPPER
            ow['dtype'] = ow.get('dtype') or 'float16'
            ow.setdefault('loss_scale', 'dynamic')
            if ow['dtype'] in ('float16', 'torch.float16') and on_cpu:
                raise SegkitError('the config trains with fp16 AMP, which needs a GPU: '
                                  'on CPU pass --amp bf16 (or --amp fp32)')
    elif amp in ('fp32', 'none', 'off'):
        ow['type'] = 'OptimWrapper'
        for key in ('dtype', 'loss_scale', 'device_type', 'use_fsdp'):
            ow.pop(key, None)
    elif amp not in AMP_DTYPES:
        raise SegkitError(f'--amp {amp}: use fp16, bf16 or fp32')
    elif amp == 'fp16' and on_cpu:
        raise SegkitError('--amp fp16 needs a GPU (CPU autocast is bf16 only): use --amp bf16')
    else:  # loss_scale 'auto': dynamic for fp16, none for bf16
        ow.update(type=AMP_WRAPPER, dtype=AMP_DTYPES[amp], loss_scale='auto')


def amp_of(cfg) -> Optional[str]:
    """'fp16' / 'bf16' when the config's optimizer wrapper autocasts, else None."""
    ow = cfg.get('optim_wrapper') or {}
    if ow.get('type') not in ('AmpOptimWrapper', AMP_WRAPPER):
        return None
    dtype = str(ow.get('dtype') or 'float16').replace('torch.', '')
    return {v: k for k, v in AMP_DTYPES.items()}.get(dtype)


def set_fused_optimizer(cfg, fused: Union[bool, str, None],
                        device: Optional[str] = None) -> bool:
    """True: torch's fused Adam/AdamW/SGD; 'auto': on CUDA only; None: as configured. Returns it."""
    opt = cfg.optim_wrapper.get('optimizer') or {}
    kind = str(opt.get('type', '')).split('.')[-1]
    supported = kind in FUSED_OPTIMIZERS
    if fused is None or (fused == 'auto' and not (
            supported and (device or default_device()) == 'cuda')):
        return bool(opt.get('fused', False))
    if fused is False:
        opt.pop('fused', None)
        return False
    if not supported:
        raise SegkitError(f'--fused: optimizer {kind!r} has no fused kernel '
                          f'(torch has one for {", ".join(FUSED_OPTIMIZERS)})')
    opt['fused'] = True
    opt.pop('foreach', None)  # fused and foreach exclude each other
    return True


def resolve_fast_paths(cfg, **overrides) -> FastPaths:
    """The config's ``fast_paths`` (else torch's and mmseg's defaults) with non-None ``overrides``."""
    if cfg.get('fast_paths') is not None:
        fp = FastPaths.from_cfg(cfg)
    else:
        fp = FastPaths(fused_optimizer=None, tf32=False, fast_attention=False,
                       cudnn_benchmark=bool((cfg.get('env_cfg') or {}).get('cudnn_benchmark')))
    for key, value in overrides.items():
        if key not in SWITCHES:
            raise TypeError(f'unknown fast path {key!r}')
        if value is not None:
            setattr(fp, key, value)
    fp.compile = normalize_compile(fp.compile)
    return fp


def apply_fast_paths(cfg, amp: Optional[str] = None, device: Optional[str] = None,
                     **overrides) -> FastPaths:
    """train.py's flags (None: not requested) into ``cfg``: AMP into ``optim_wrapper``, the rest
    (when requested or configured) into ``fast_paths``, ``runner_type`` and ``env_cfg``."""
    set_amp(cfg, amp, device)
    fp = resolve_fast_paths(cfg, **overrides)
    if cfg.get('fast_paths') is None and all(v is None for v in overrides.values()):
        return fp
    cfg.fast_paths = fp.to_cfg()
    cfg.env_cfg = cfg.get('env_cfg') or {}
    cfg.env_cfg['cudnn_benchmark'] = bool(fp.cudnn_benchmark)
    if cfg.get('runner_type') not in (None, RUNNER):
        raise SegkitError(f"fast paths need runner_type '{RUNNER}'; the config sets "
                          f'{cfg.runner_type!r}')
    cfg.runner_type = RUNNER
    ci = cfg.get('custom_imports')
    if ci and 'segkit.plugins' not in ci.get('imports', []):
        ci['imports'] = list(ci.get('imports', [])) + ['segkit.plugins']
    return fp


@contextlib.contextmanager
def backend_flags(cudnn_benchmark: bool = True, tf32: bool = True):
    """The backend flags for a block, restored after it (benchmark.py runs two setups)."""
    old = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
           torch.backends.cudnn.allow_tf32)
    set_backend_flags(cudnn_benchmark, tf32)
    try:
        yield
    finally:
        (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = old


def set_backend_flags(cudnn_benchmark: bool = True, tf32: bool = True) -> None:
    torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
    # torch's defaults: TF32 on for cuDNN convs, off for matmuls
    torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
    torch.backends.cudnn.allow_tf32 = True if tf32 else torch.backends.cudnn.allow_tf32


# ------------------------------------------------------------------ model switches

def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(getattr(model, 'module', None), nn.Module) else model


def _patch_forward(module: nn.Module, marker: str, wrap) -> bool:
    """``module.forward = wrap(module.forward, module)`` once per instance (False: done already)."""
    if getattr(module, marker, False):
        return False
    module.forward = wrap(module.forward, module)
    setattr(module, marker, True)
    return True


def enable_fast_attention(model: nn.Module) -> int:
    """``need_weights=False`` in mmcv's MultiheadAttention (it drops them); returns how many."""
    from mmcv.cnn.bricks.transformer import MultiheadAttention

    def wrap(orig, _):
        return lambda *args, **kwargs: orig(*args, **{**kwargs, 'need_weights': False})

    mhas = [m.attn for m in _unwrap(model).modules() if isinstance(m, MultiheadAttention)
            and isinstance(getattr(m, 'attn', None), nn.MultiheadAttention)]
    for mha in mhas:
        _patch_forward(mha, '_segkit_fast_attention', wrap)
    return len(mhas)


def enable_channels_last(model: nn.Module) -> int:
    """NHWC weights, and the data preprocessor hands the batch over in NHWC."""
    def wrap(orig, _):
        def forward(*args, **kwargs):
            out = orig(*args, **kwargs)
            x = out.get('inputs') if isinstance(out, dict) else None
            if isinstance(x, torch.Tensor) and x.dim() == 4:
                out['inputs'] = x.contiguous(memory_format=torch.channels_last)
            return out
        return forward

    inner = _unwrap(model)
    inner.to(memory_format=torch.channels_last)
    pre = getattr(inner, 'data_preprocessor', None)
    if pre is not None:
        _patch_forward(pre, '_segkit_channels_last', wrap)
    return sum(1 for p in inner.parameters() if p.dim() == 4)


def compile_model(model: nn.Module, target: Union[bool, str] = 'auto', mode=None,
                  backend: str = 'inductor', train_only: bool = True) -> list:
    """torch.compile backbone (+ neck) and, for 'auto' / 'model', the heads ('auto': not MaskFormer's
    Hungarian matching); eval runs eager (val sizes vary), a failed compile eager with a warning."""
    target = normalize_compile(target)
    if not target:
        return []
    import torch._dynamo
    torch._dynamo.config.suppress_errors = True

    def wrap(eager, module):
        compiled = torch.compile(eager, mode=mode, backend=backend)
        return lambda *a, **kw: (eager if train_only and not module.training
                                 else compiled)(*a, **kw)

    inner = _unwrap(model)
    parts = [(name, getattr(inner, name, None)) for name in ('backbone', 'neck')]
    if target in ('auto', 'model'):
        aux = getattr(inner, 'auxiliary_head', None)
        heads = [('decode_head', getattr(inner, 'decode_head', None))] + (
            [(f'auxiliary_head.{i}', h) for i, h in enumerate(aux)]
            if isinstance(aux, nn.ModuleList) else [('auxiliary_head', aux)])
        parts += [(f'{name}.forward', head) for name, head in heads if target == 'model'
                  or type(head).__name__ not in ('Mask2FormerHead', 'MaskFormerHead')]
    return [name for name, m in parts
            if isinstance(m, nn.Module) and _patch_forward(m, '_segkit_compiled', wrap)]


def apply_model_fast_paths(model: nn.Module, fp: FastPaths) -> dict:
    """The model-level switches; records what was done in ``fp.applied``."""
    applied = {}
    if fp.fast_attention:
        applied['fast_attention_modules'] = enable_fast_attention(model)
    if fp.channels_last:
        applied['channels_last_weights'] = enable_channels_last(model)
    if fp.compile:
        applied['compiled'] = compile_model(model, fp.compile, fp.compile_mode,
                                            fp.compile_backend)
    fp.applied.update(applied)
    return applied


def autocast_context(amp: Optional[str], device: str):
    """Autocast for inference with the same dtype as training (nullcontext if none)."""
    if not amp:
        return contextlib.nullcontext()
    if device == 'cpu' and amp == 'fp16':
        raise SegkitError('fp16 autocast on CPU is not supported: use bf16')
    return torch.autocast(device_type=device, dtype=getattr(torch, AMP_DTYPES[amp]))


def cpu_has_bf16() -> bool:
    """Native bf16 on this CPU (AVX512-BF16 / AMX); without it autocast is emulated (slow)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001
        return False
