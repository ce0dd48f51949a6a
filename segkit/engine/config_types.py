"""The types of the config values segkit and mmengine compute with: a wrong type
(``max_epochs=abc``), an empty value or a knob left a tuple (``lr = 6e-3,``) would crash
arithmetic deep in preflight or mmengine. An absent key is not checked."""
from __future__ import annotations

import numbers
from typing import Any, Iterator

from segkit.checks import FAIL, Check


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_dict(v) -> bool:
    return isinstance(v, dict)


# (what a value must be, its test, key patterns): ``*`` matches every item of a list or
# every key of a dict; LOADER stands for each of the three dataloaders, HEAD for each head
TYPED_KEYS = (
    ('a dict(...)', _is_dict, 'model optim_wrapper optim_wrapper.optimizer default_hooks '
     'env_cfg LOADER.dataset LOADER.sampler LOADER.dataset.data_prefix'),
    ('a dict(...) or None', lambda v: v is None or _is_dict(v), 'train_cfg default_hooks.* LOADER'),
    ('a dict(...) or a list of them', lambda v: _is_dict(v) or (
        isinstance(v, (list, tuple)) and all(map(_is_dict, v))),
     'param_scheduler custom_hooks val_evaluator test_evaluator'),
    ('a positive integer', lambda v: _is_int(v) and v >= 1,
     # the knobs at the top of segkit's leaf configs, then what the Runner computes with
     'num_gpus samples_per_gpu max_epochs val_interval checkpoint_interval num_classes '
     'train_cfg.max_epochs train_cfg.max_iters train_cfg.val_interval LOADER.batch_size '
     'optim_wrapper.accumulative_counts auto_scale_lr.base_batch_size HEAD.num_classes '
     'HEAD.channels default_hooks.checkpoint.interval default_hooks.logger.interval'),
    ('an integer >= 0', lambda v: _is_int(v) and v >= 0, 'train_cfg.val_begin LOADER.num_workers'),
    ('an integer', _is_int, 'default_hooks.checkpoint.max_keep_ckpts randomness.seed'),
    ('a positive number', lambda v: _is_num(v) and v > 0,
     'lr optim_wrapper.optimizer.lr optim_wrapper.clip_grad.max_norm param_scheduler.*.end '
     'param_scheduler.*.start_factor param_scheduler.*.power'),
    ('a number >= 0', lambda v: _is_num(v) and v >= 0,
     'warmup_epochs optim_wrapper.optimizer.weight_decay optim_wrapper.optimizer.momentum '
     'param_scheduler.*.begin param_scheduler.*.eta_min'),
    ('True or False', lambda v: isinstance(v, bool), 'LOADER.persistent_workers '
     'train_dataloader.drop_last auto_scale_lr.enable param_scheduler.*.by_epoch'),
    ('a non-empty string', lambda v: isinstance(v, str) and v != '',
     'work_dir LOADER.dataset.data_root'),
    ('a path (string) or None', lambda v: v is None or (isinstance(v, str) and v != ''),
     'load_from'),
    ('two positive integers, e.g. (512, 512)', lambda v: isinstance(v, (list, tuple))
     and len(v) == 2 and all(_is_int(x) and x >= 1 for x in v),
     'crop_size model.data_preprocessor.size'),
)
_PLACES = {'LOADER': ('train_dataloader', 'val_dataloader', 'test_dataloader'),
           'HEAD': ('model.decode_head', 'model.decode_head.*', 'model.auxiliary_head',
                    'model.auxiliary_head.*')}


def _patterns(keys: str) -> Iterator[str]:
    for key in keys.split():
        place, dot, rest = key.partition('.')
        yield from (p + dot + rest for p in _PLACES[place]) if place in _PLACES else [key]


def _items(node: Any, parts: list, where: str) -> Iterator[tuple]:
    """(full key, value) of every present value matching ``parts`` under ``node``."""
    if not parts:
        yield where, node
        return
    head, rest = parts[0], parts[1:]
    if head == '*':
        pairs = enumerate(node) if isinstance(node, (list, tuple)) else \
            node.items() if isinstance(node, dict) else ()
        for k, v in pairs:
            yield from _items(v, rest, f'{where}[{k}]' if isinstance(k, int) else f'{where}.{k}')
    elif isinstance(node, dict) and head in node:
        yield from _items(node[head], rest, f'{where}.{head}' if where else head)


def describe(value: Any) -> str:
    if value == '' or value is None:
        return 'empty' if value == '' else 'None'
    hint = ''
    if isinstance(value, tuple) and len(value) == 1:
        hint = ' (a trailing comma in the config, as in `lr = 6e-3,`, makes a tuple)'
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + '...'
    return f'{text} ({type(value).__name__}){hint}'


def type_rows(cfg) -> list[Check]:
    """A FAIL row per config value of the wrong type or empty; [] when all fit."""
    rows = []
    root = getattr(cfg, '_cfg_dict', cfg)  # mmengine's Config wraps a ConfigDict
    for expected, ok, keys in TYPED_KEYS:
        for pattern in _patterns(keys):
            for key, value in _items(root, pattern.split('.'), ''):
                if pattern.endswith('.channels') and not isinstance(value, (int, str)):
                    continue  # some heads take a list of channels
                try:
                    good = bool(ok(value))
                except Exception:  # noqa: BLE001 - a comparison the value does not support
                    good = False
                if not good:
                    rows.append(Check('config types', FAIL, f'config key {key} is '
                                      f'{describe(value)}, expected {expected}',
                                      f'fix it in the config or with --cfg-options {key}=VALUE'))
    return rows
