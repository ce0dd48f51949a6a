"""Safe checkpoint loading on torch >= 2.6, without turning ``weights_only`` off.

mmengine's resume checkpoints fail ``weights_only=True`` (``Unsupported global: ...
HistoryBuffer``): the message hub pickles ``HistoryBuffer`` objects holding numpy arrays,
and each buffer's statistics methods as ``getattr(HistoryBuffer, 'min')``. We allowlist
exactly those types and substitute a restricted ``getattr`` (allowlisting the real one
would let a crafted pickle reach ``getattr(os, 'system')``). Every other global is
refused with a one-line :class:`SegkitError`; the payload never runs.
"""
from __future__ import annotations

import functools
import os
import pickle
import zipfile

import numpy as np
import torch
import torch.serialization
from mmengine.logging import HistoryBuffer

from segkit.errors import SegkitError


def _history_buffer_getattr(obj, name):
    """``builtins.getattr`` as seen by the unpickler: HistoryBuffer methods only."""
    allowed = {'min', 'max', 'current', 'mean', *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in allowed and not name.startswith('_'):
        return getattr(HistoryBuffer, name)
    owner = getattr(obj, '__qualname__', type(obj).__name__)
    raise pickle.UnpicklingError(f'getattr({owner}, {name!r}) is not allowed: only '
                                 'HistoryBuffer statistics methods may be looked up')


def safe_globals() -> list:
    """The allowlist, in ``torch.serialization.add_safe_globals`` form: HistoryBuffer and
    the numpy types it pickles, under numpy 2 and numpy 1 (``numpy.core``) names."""
    core = getattr(np, '_core', None) or np.core
    reconstruct, scalar = core.multiarray._reconstruct, core.multiarray.scalar
    # numpy >= 1.25 rebuilds a dtype from its class (numpy.dtypes.Float64DType)
    dtype_classes = [type(np.dtype(t)) for t in (
        'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',
        'float16', 'float32', 'float64')]
    return [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'), *dtype_classes,
            np.ndarray, np.dtype] + [(fn, f'numpy.{pkg}.multiarray.{fn.__name__}')
                                     for pkg in ('_core', 'core') for fn in (reconstruct, scalar)]


def allowed_global_names() -> set[str]:
    return {item[1] if isinstance(item, tuple) else f'{item.__module__}.{item.__qualname__}'
            for item in safe_globals()}


@functools.cache
def register_safe_globals() -> None:
    """Register the allowlist with torch and our loader with mmengine (once)."""
    torch.serialization.add_safe_globals(safe_globals())
    # mmengine's local loader calls torch.load directly; ours gives the one-line errors
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=_mmengine_local_loader, force=True)


def _mmengine_local_loader(filename, map_location):
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_load(filename, map_location=map_location)


def _refusal(path: str, err: Exception) -> str:
    """Why the unpickler refused ``path``: the first global off the allowlist, else the
    most telling line of ``err``."""
    try:
        allowed = allowed_global_names()
        refused = [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path)
                   if g not in allowed]
    except Exception:  # noqa: BLE001 - best effort, err is the real error
        refused = []
    if refused:
        return f'it references {refused[0]!r}, which is not on the allowlist'
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return next((ln for key in ('Unsupported global', 'but got', 'is not allowed', 'error:')
                 for ln in lines if key in ln), lines[0] if lines else type(err).__name__)


def safe_load(path, map_location='cpu'):
    """``torch.load(path, weights_only=True)``; SegkitError for a checkpoint that references
    a global outside the allowlist, and for a truncated or corrupt file."""
    path = os.fspath(path)
    register_safe_globals()
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise SegkitError(
            f'refusing to load checkpoint {path}: {_refusal(path, err)} (a crafted checkpoint '
            'can run code when unpickled); if you trust it, re-save just its tensors '
            "(torch.save(ckpt['state_dict'], ...)) where it was made") from None
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (RuntimeError, OSError, EOFError, zipfile.BadZipFile) as err:
        first = (str(err).split('. ')[0].splitlines() or [type(err).__name__])[0]
        raise SegkitError(f'checkpoint {path} is truncated or corrupt ({first}); delete it '
                          'and resume from an earlier one') from None
