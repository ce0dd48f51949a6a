"""Reading configs: loading with one-line errors, walking datasets and pretrained
paths, and the facts a config's file name states (``{G}xb{B}-{E}e``)."""
from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from segkit.errors import SegkitError, one_line

# {algo}_{backbone}_{G}xb{B}-{E}e_{dataset}-{H}x{W}.py (mmseg naming, epochs)
_NAME = re.compile(r'_(?P<gpus>\d+)xb(?P<batch>\d+)-(?P<len>\d+)(?P<unit>e|k)'
                   r'(?:-[^_]*)?_(?P<dataset>[^-_]+)-(?P<h>\d+)x(?P<w>\d+)')


@dataclass
class ConfigName:
    gpus: int
    batch: int  # per GPU
    length: int  # epochs ('e') or thousands of iterations ('k')
    unit: str
    dataset: str
    crop: tuple

    @property
    def total_batch(self) -> int:
        return self.gpus * self.batch


def parse_config_name(path: str) -> Optional[ConfigName]:
    m = _NAME.search(Path(path).stem)
    return ConfigName(int(m['gpus']), int(m['batch']), int(m['len']), m['unit'], m['dataset'],
                      (int(m['h']), int(m['w']))) if m else None


def resolve_config(path: str) -> str:
    """A config path, with ``mmseg::x/y.py`` (mmseg's model zoo) made a file path."""
    if '::' not in path:
        return path
    package, rel = path.split('::', 1)
    pkg = importlib.import_module(package)
    return os.path.join(os.path.dirname(pkg.__file__), '.mim', 'configs', rel)


def load_config(path: str, cfg_options: Optional[dict] = None):
    """``Config.fromfile`` with a one-line error for a missing or broken file."""
    from mmengine.config import Config
    path = resolve_config(path)
    if not os.path.isfile(path):
        raise SegkitError(f'config {path} does not exist: pass a path like '
                          'configs/demo/segformer_mit-tiny_1xb8-40e_demo-64x64.py')
    try:
        cfg = Config.fromfile(path)
    except SegkitError:
        raise
    except Exception as err:  # noqa: BLE001 - mmengine raises many kinds
        raise SegkitError(f'config {path} does not load: {one_line(err, 1000)}') from None
    try:
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    except Exception as err:  # noqa: BLE001 - a key path that does not fit the config
        raise SegkitError(f'--cfg-options does not apply to {path}: {one_line(err)}') from None
    return cfg


def iter_datasets(dataset_cfg, prefix: str = '') -> Iterator[tuple]:
    """Leaf dataset configs under Concat/Repeat wrappers: (label, cfg)."""
    if dataset_cfg is None:
        return
    if 'datasets' in dataset_cfg:
        for i, sub in enumerate(dataset_cfg['datasets']):
            yield from iter_datasets(sub, f'{prefix}[{i}]')
    elif 'dataset' in dataset_cfg:
        yield from iter_datasets(dataset_cfg['dataset'], prefix)
    else:
        yield prefix, dataset_cfg


def split_datasets(cfg, splits=('train', 'val', 'test')) -> Iterator[tuple]:
    """(split label, leaf dataset cfg) for each split's dataloader."""
    seen = set()
    for split in splits:
        loader = cfg.get(f'{split}_dataloader') or {}
        for label, ds in iter_datasets(loader.get('dataset')):
            key = repr(sorted((k, repr(v)) for k, v in ds.items() if k != 'pipeline'))
            if key in seen:  # test_dataloader = val_dataloader
                continue
            seen.add(key)
            yield split + label, ds


def dataset_paths(ds) -> dict:
    """{'data_root': ..., 'img_path': ..., 'seg_map_path': ..., 'ann_file': ...}"""
    root = ds.get('data_root') or ''
    prefix = ds.get('data_prefix') or {}
    out = {'data_root': root, **{key: os.path.join(root, prefix[key]) for key in
                                 ('img_path', 'seg_map_path') if prefix.get(key) is not None}}
    if ds.get('ann_file'):
        out['ann_file'] = os.path.join(root, ds['ann_file'])
    return out


def pretrained_paths(cfg) -> list[tuple]:
    """(where in the config, path) of every local pretrained file it loads."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            if node.get('type') == 'Pretrained' and node.get('checkpoint'):
                found.append((where + '.checkpoint', node['checkpoint']))
            for k, v in node.items():
                if k == 'pretrained' and isinstance(v, str):
                    found.append((f'{where}.pretrained', v))
                else:
                    walk(v, f'{where}.{k}')
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                walk(v, f'{where}[{i}]')

    walk(cfg.get('model'), 'model')
    if cfg.get('load_from'):
        found.append(('load_from', cfg['load_from']))
    return [(w, p) for w, p in found if not re.match(r'^[a-z0-9+]+://', str(p))]


def set_max_epochs(cfg, epochs: int, epoch_length: Optional[int] = None) -> None:
    """Train for ``epochs``, scaling every scheduler's begin, end and milestones with it
    (``train_cfg.max_epochs=N`` alone would leave the LR at its end value, or cut it).
    With ``epoch_length`` (iterations per epoch) a phase shrunk below one iteration
    (a warmup in a very short run) keeps one, and the phase after it starts there."""
    scale = epochs / cfg.train_cfg.max_epochs
    cfg.train_cfg.max_epochs = epochs

    def stretch(v):
        v = v * scale
        return int(round(v)) if abs(v - round(v)) < 1e-9 else v

    scheds = cfg.get('param_scheduler') or []
    scheds = [scheds] if isinstance(scheds, dict) else scheds
    for s in scheds:
        for key in ('begin', 'end', 'T_max'):
            if s.get(key) is not None:
                s[key] = stretch(s[key])
        if s.get('milestones'):
            s['milestones'] = [stretch(m) for m in s['milestones']]
    if epoch_length:
        for s in scheds:
            begin, end = s.get('begin', 0), s.get('end')
            if end is not None and int(end * epoch_length) <= int(begin * epoch_length):
                new_end = (int(begin * epoch_length) + 1) / epoch_length
                for later in scheds:  # the phase that started where this one ended
                    if later is not s and later.get('begin') == end:
                        later['begin'] = new_end
                s['end'] = new_end
    ckpt = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    for section, key in ((cfg.train_cfg, 'val_interval'), (ckpt, 'interval')):
        if section.get(key, 1) > epochs:
            section[key] = epochs


def resolve_class_weight_files(node) -> None:
    """Replace every ``class_weight='file.json'`` in a model config with the list it
    holds (tools/class_weights.py writes such files). mmseg's own loss reads a path,
    but Mask2Former's head reads ``loss_cls.class_weight`` from the config itself."""
    if isinstance(node, dict):
        cw = node.get('class_weight')
        if isinstance(cw, str):
            if not os.path.isfile(cw):
                raise SegkitError(
                    f'class weights file {cw} does not exist: make it with python '
                    'tools/class_weights.py CONFIG (it writes there by default)')
            import mmengine
            import numpy as np
            node['class_weight'] = [float(w) for w in (np.load(cw) if cw.endswith('.npy')
                                                       else mmengine.load(cw))]
        for v in node.values():
            resolve_class_weight_files(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            resolve_class_weight_files(v)
