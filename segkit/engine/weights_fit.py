"""Do the weights fit the model? Checkpoint keys and shapes against the model's.

mmengine loads ``init_cfg`` Pretrained / ``load_from`` with ``strict=False``: a file
of another layout (an unconverted MiT release) loads 0 tensors behind one warning,
and the run trains from random init. Here, before anything is written, every
weight file the run will load is compared with the part of the model it loads
into (read memory-mapped, the model built on the meta device: no tensor memory).
"""
from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from typing import Optional

from segkit.errors import SegkitError

MIN_MATCH = 0.9
OPT_OUT = '--partial-weights'


@contextmanager
def _quiet():
    import logging
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


def build_model_shapes(cfg) -> dict:
    """{state-dict key: shape} of ``cfg.model``, built on the meta device when possible."""
    import copy

    import torch
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    model_cfg = copy.deepcopy(cfg.model)
    if model_cfg.get('type') == 'SegTTAModel':
        model_cfg = model_cfg['module']
    model_cfg.pop('pretrained', None)  # init only; never read at build
    from mmengine.registry import DefaultScope
    # the scope the Runner builds in (nested types such as mmdet's head resolve from it)
    with _quiet(), warnings.catch_warnings(), \
            DefaultScope.overwrite_default_scope(cfg.get('default_scope') or 'mmseg'):
        warnings.simplefilter('ignore')  # the Runner's build repeats them
        try:
            with torch.device('meta'):
                model = MODELS.build(model_cfg)
        except Exception:  # noqa: BLE001 - some modules compute at build: do it on CPU
            model = MODELS.build(model_cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()
            if not k.endswith('num_batches_tracked')}


def load_state_shapes(path: str) -> dict:
    """{key: shape} of the tensors in a checkpoint (memory-mapped read)."""
    from segkit.engine.resume import _load_mmap
    import torch
    obj = _load_mmap(path)
    if isinstance(obj, dict):
        for key in ('state_dict', 'model', 'module'):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise SegkitError(f'{path} holds no state dict (a {type(obj).__name__})')
    sd = {k: tuple(v.shape) for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if sd and all(k.startswith('module.') for k in sd):
        sd = {k[len('module.'):]: v for k, v in sd.items()}
    return sd


def part_shapes(model: dict, part: str) -> dict:
    if not part:
        return model
    return {k[len(part) + 1:]: v for k, v in model.items() if k.startswith(part + '.')}


_KIND_NAMES = {'mit': 'MiT', 'swin': 'Swin', 'mobilenetv3': 'MobileNetV3'}


def layout_hint(sd: dict, path: str, part: str = '') -> str:
    """What a file of another layout looks like: '' or '; the file looks like ...'."""
    import os
    import shlex
    try:
        from segkit.convert.weights import detect_format
        kind, layout = detect_format(sd)
    except Exception:  # noqa: BLE001 - unknown layout
        kind, layout = None, None
    if kind and layout != 'mmseg':
        name = {'hf': 'a Hugging Face', 'torchvision': 'a torchvision'}.get(
            layout, 'an unconverted')
        dst = os.path.splitext(path)[0] + '_mmseg.pth'
        from segkit.engine.cli import shell_command
        return (f'; the file looks like {name} {_KIND_NAMES.get(kind, kind)} checkpoint: '
                + shell_command(['python', 'tools/convert_weights.py', kind, path, dst]))
    if part and any(k.startswith('backbone.') for k in sd):
        return ('; the file is a whole segmentor (keys start with backbone.): load it with '
                'load_from, or set the init_cfg prefix')
    return ''


def fit(model: dict, ckpt: dict) -> tuple[int, int, list]:
    """(matched, total, [keys of the same name but another shape])."""
    matched, wrong = 0, []
    for k, shape in model.items():
        if k in ckpt:
            if ckpt[k] == shape:
                matched += 1
            else:
                wrong.append(k)
    return matched, len(model), wrong


def where_to_part(where: str) -> str:
    """'model.backbone.init_cfg.checkpoint' -> 'backbone'; 'model.pretrained' ->
    'backbone' (mmseg hands it to the backbone); 'load_from' -> '' (whole model)."""
    if where == 'load_from':
        return ''
    if where == 'model.pretrained':
        return 'backbone'
    path = re.sub(r'^model\.?', '', where)
    path = re.sub(r'\.?(init_cfg(\[\d+\])?\.checkpoint|pretrained)$', '', path)
    return path


def problem(path: str, where: str, model: dict, exact: bool = False) -> Optional[str]:
    """One line when the file at ``path`` does not fit the part of ``model`` that
    ``where`` loads (``exact``: every tensor must fit, as for a resume)."""
    part = where_to_part(where)
    target = part_shapes(model, part)
    if not target:
        return None  # a part we cannot see (a custom hook loads it): not ours to judge
    ckpt = load_state_shapes(path)
    matched, total, wrong = fit(target, ckpt)
    if (matched == total) if exact else matched >= MIN_MATCH * total:
        return None
    label = f'{part.split(".")[-1]} ' if part else 'model '
    shape = f' ({len(wrong)} differ in shape, e.g. {wrong[0]}: file {ckpt[wrong[0]]} vs ' \
            f'model {target[wrong[0]]})' if wrong else ''
    return (f'{where} {path}: {matched} of {total} {label}parameters match{shape}'
            f'{layout_hint(ckpt, path, part)}')
