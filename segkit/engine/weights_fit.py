"""Do the weights fit the model? mmengine loads with ``strict=False``: a file of another
layout (an unconverted MiT release) loads 0 tensors behind one warning and the run trains
from random init. So each file is compared, key and shape, with the part it loads into."""
from __future__ import annotations

import copy
import logging
import os
import re
import warnings
from typing import Optional

from segkit.engine.cli import shell_command
from segkit.engine.resume import load_mmap
from segkit.errors import SegkitError

MIN_MATCH = 0.9
OPT_OUT = '--partial-weights'
_KIND_NAMES = {'mit': 'MiT', 'swin': 'Swin', 'mobilenetv3': 'MobileNetV3'}


def build_model_shapes(cfg) -> dict:
    """{state-dict key: shape} of ``cfg.model``, built on the meta device when possible."""
    import torch
    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    model_cfg = copy.deepcopy(cfg.model)
    if model_cfg.get('type') == 'SegTTAModel':
        model_cfg = model_cfg['module']
    model_cfg.pop('pretrained', None)  # init only; never read at build
    logger = MMLogger.get_current_instance()
    old_level = logger.level
    logger.setLevel(logging.ERROR)
    # the scope the Runner builds in (nested types such as mmdet's head resolve from it)
    try:
        with warnings.catch_warnings(), \
                DefaultScope.overwrite_default_scope(cfg.get('default_scope') or 'mmseg'):
            warnings.simplefilter('ignore')  # the Runner's build repeats them
            try:
                with torch.device('meta'):
                    model = MODELS.build(model_cfg)
            except Exception:  # noqa: BLE001 - some modules compute at build: do it on CPU
                model = MODELS.build(model_cfg)
    finally:
        logger.setLevel(old_level)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()
            if not k.endswith('num_batches_tracked')}


def load_state_shapes(path: str) -> dict:
    """{key: shape} of the tensors in a checkpoint (memory-mapped read)."""
    import torch
    obj = load_mmap(path)
    if isinstance(obj, dict):
        obj = next((obj[k] for k in ('state_dict', 'model', 'module')
                    if isinstance(obj.get(k), dict)), obj)
    if not isinstance(obj, dict):
        raise SegkitError(f'{path} holds no state dict (a {type(obj).__name__})')
    sd = {k: tuple(v.shape) for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if sd and all(k.startswith('module.') for k in sd):
        sd = {k[len('module.'):]: v for k, v in sd.items()}
    return sd


def layout_hint(sd: dict, path: str, part: str = '') -> str:
    """What a file of another layout looks like: '' or '; the file looks like ...'."""
    try:
        from segkit.convert.weights import detect_format
        kind, layout = detect_format(sd)
    except Exception:  # noqa: BLE001 - unknown layout
        kind, layout = None, None
    if kind and layout != 'mmseg':
        name = {'hf': 'a Hugging Face', 'torchvision': 'a torchvision'}.get(layout, 'an unconverted')
        dst = os.path.splitext(path)[0] + '_mmseg.pth'
        return (f'; the file looks like {name} {_KIND_NAMES.get(kind, kind)} checkpoint: '
                + shell_command(['python', 'tools/convert_weights.py', kind, path, dst]))
    if part and any(k.startswith('backbone.') for k in sd):
        return ('; the file is a whole segmentor (keys start with backbone.): load it with '
                'load_from, or set the init_cfg prefix')
    return ''


def where_to_part(where: str) -> str:
    """'model.backbone.init_cfg.checkpoint' -> 'backbone'; 'model.pretrained' ->
    'backbone' (mmseg hands it to the backbone); 'load_from' -> '' (whole model)."""
    fixed = {'load_from': '', 'model.pretrained': 'backbone'}
    if where in fixed:
        return fixed[where]
    return re.sub(r'\.?(init_cfg(\[\d+\])?\.checkpoint|pretrained)$', '', re.sub(r'^model\.?', '', where))


def problem(path: str, where: str, model: dict, exact: bool = False) -> Optional[str]:
    """One line when the file at ``path`` does not fit the part of ``model`` that
    ``where`` loads (``exact``: every tensor must fit, as for a resume)."""
    part = where_to_part(where)
    target = {k[len(part) + 1:]: v for k, v in model.items()
              if k.startswith(part + '.')} if part else model
    if not target:
        return None  # a part we cannot see (a custom hook loads it): not ours to judge
    ckpt = load_state_shapes(path)
    matched = sum(ckpt.get(k) == shape for k, shape in target.items())
    wrong = [k for k, shape in target.items() if k in ckpt and ckpt[k] != shape]
    if matched == len(target) or (not exact and matched >= MIN_MATCH * len(target)):
        return None
    label = f'{part.split(".")[-1]} ' if part else 'model '
    shape = f' ({len(wrong)} differ in shape, e.g. {wrong[0]}: file {ckpt[wrong[0]]} vs ' \
            f'model {target[wrong[0]]})' if wrong else ''
    return (f'{where} {path}: {matched} of {len(target)} {label}parameters match{shape}'
            f'{layout_hint(ckpt, path, part)}')
