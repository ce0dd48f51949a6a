"""The types of the config values segkit and mmengine compute with, checked generically.

A value of the wrong type (``--cfg-options train_cfg.max_epochs=abc``), an empty one
(``model.decode_head.num_classes=``) or a knob left as a tuple (``lr = 6e-3,``) would
otherwise crash arithmetic deep in preflight or mmengine. :data:`TYPED_KEYS` lists
(key pattern, expected kind); ``*`` matches every item of a list or every key of a
dict, and a key that is absent is not checked (the config's base decides).
"""
from __future__ import annotations

import numbers
from typing import Any, Iterator

from segkit.checks import FAIL, Check



def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


# kinds: what a value must be, and how to say it
KINDS = {
    'pos_int': ('a positive integer', lambda v: _is_int(v) and v >= 1),
    'nonneg_int': ('an integer >= 0', lambda v: _is_int(v) and v >= 0),
    'int': ('an integer', _is_int),
    'pos_num': ('a positive number', lambda v: _is_num(v) and v > 0),
    'nonneg_num': ('a number >= 0', lambda v: _is_num(v) and v >= 0),
    'num': ('a number', _is_num),
    'bool': ('True or False', lambda v: isinstance(v, bool)),
    'str': ('a non-empty string', lambda v: isinstance(v, str) and v != ''),
    'opt_str': ('a path (string) or None', lambda v: v is None or
                (isinstance(v, str) and v != '')),
    'dict': ('a dict(...)', lambda v: isinstance(v, dict)),
    'opt_dict': ('a dict(...) or None', lambda v: v is None or isinstance(v, dict)),
    'dicts': ('a dict(...) or a list of them', lambda v: isinstance(v, dict) or (
        isinstance(v, (list, tuple)) and all(isinstance(x, dict) for x in v))),
    'size2': ('two positive integers, e.g. (512, 512)', lambda v: isinstance(v, (list, tuple))
              and len(v) == 2 and all(_is_int(x) and x >= 1 for x in v)),
}

_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
_HEADS = ('model.decode_head', 'model.decode_head.*', 'model.auxiliary_head',
          'model.auxiliary_head.*')

TYPED_KEYS: tuple = (
    # the sections everything below reads
    ('model', 'dict'), ('train_cfg', 'opt_dict'), ('optim_wrapper', 'dict'),
    ('optim_wrapper.optimizer', 'dict'), ('param_scheduler', 'dicts'),
    ('default_hooks', 'dict'), ('default_hooks.*', 'opt_dict'), ('custom_hooks', 'dicts'),
    *((ld, 'opt_dict') for ld in _LOADERS), *((f'{ld}.dataset', 'dict') for ld in _LOADERS),
    *((f'{ld}.sampler', 'dict') for ld in _LOADERS),
    *((f'{ld}.dataset.data_prefix', 'dict') for ld in _LOADERS),
    ('val_evaluator', 'dicts'), ('test_evaluator', 'dicts'), ('env_cfg', 'dict'),
    # the knobs at the top of segkit's leaf configs
    ('num_gpus', 'pos_int'), ('samples_per_gpu', 'pos_int'), ('max_epochs', 'pos_int'),
    ('warmup_epochs', 'nonneg_num'), ('val_interval', 'pos_int'),
    ('checkpoint_interval', 'pos_int'), ('lr', 'pos_num'), ('num_classes', 'pos_int'),
    ('crop_size', 'size2'),
    # what the Runner and the loops compute with
    ('work_dir', 'str'), ('load_from', 'opt_str'),
    ('train_cfg.max_epochs', 'pos_int'), ('train_cfg.max_iters', 'pos_int'),
    ('train_cfg.val_interval', 'pos_int'), ('train_cfg.val_begin', 'nonneg_int'),
    *((f'{ld}.batch_size', 'pos_int') for ld in _LOADERS),
    *((f'{ld}.num_workers', 'nonneg_int') for ld in _LOADERS),
    *((f'{ld}.persistent_workers', 'bool') for ld in _LOADERS),
    *((f'{ld}.dataset.data_root', 'str') for ld in _LOADERS),
    ('train_dataloader.drop_last', 'bool'),
    ('optim_wrapper.optimizer.lr', 'pos_num'),
    ('optim_wrapper.optimizer.weight_decay', 'nonneg_num'),
    ('optim_wrapper.optimizer.momentum', 'nonneg_num'),
    ('optim_wrapper.accumulative_counts', 'pos_int'),
    ('optim_wrapper.clip_grad.max_norm', 'pos_num'),
    ('auto_scale_lr.base_batch_size', 'pos_int'), ('auto_scale_lr.enable', 'bool'),
    ('param_scheduler.*.begin', 'nonneg_num'), ('param_scheduler.*.end', 'pos_num'),
    ('param_scheduler.*.by_epoch', 'bool'), ('param_scheduler.*.start_factor', 'pos_num'),
    ('param_scheduler.*.eta_min', 'nonneg_num'), ('param_scheduler.*.power', 'pos_num'),
    *((f'{h}.num_classes', 'pos_int') for h in _HEADS),
    *((f'{h}.channels', 'pos_int') for h in _HEADS),
    ('model.data_preprocessor.size', 'size2'),
    ('default_hooks.checkpoint.interval', 'pos_int'),
    ('default_hooks.checkpoint.max_keep_ckpts', 'int'),
    ('default_hooks.logger.interval', 'pos_int'),
    ('randomness.seed', 'int'),
)


def _items(node: Any, parts: list, where: str) -> Iterator[tuple]:
    """(full key, value) of every present value matching ``parts`` under ``node``."""
    if not parts:
        yield where, node
        return
    head, rest = parts[0], parts[1:]
    if head == '*':
        if isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                yield from _items(v, rest, f'{where}[{i}]')
        elif isinstance(node, dict):
            for k, v in node.items():
                yield from _items(v, rest, f'{where}.{k}')
        return
    if isinstance(node, dict) and head in node:
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
    for pattern, kind in TYPED_KEYS:
        expected, ok = KINDS[kind]
        for key, value in _items(root, pattern.split('.'), ''):
            if pattern.endswith('.channels') and not isinstance(value, (int, str)):
                continue  # some heads take a list of channels
            try:
                good = bool(ok(value))
            except Exception:  # noqa: BLE001 - a comparison the value does not support
                good = False
            if not good:
                rows.append(Check('config types', FAIL,
                                  f'config key {key} is {describe(value)}, expected {expected}',
                                  f'fix it in the config or with --cfg-options {key}=VALUE'))
    return rows
