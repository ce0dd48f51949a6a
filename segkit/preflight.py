"""Checks that a config can run, before anything is built (and in ``doctor CONFIG``)."""
from __future__ import annotations

import os

from .configs import dataset_paths, load_config, pretrained_paths, split_datasets
from .doctor import FAIL, PASS, Check
from .errors import SegkitError
from .pretrained import how_to_get


def _rows(cfg, splits=('train', 'val', 'test')) -> list[Check]:
    rows = []
    for split, ds in split_datasets(cfg, splits):
        for key, path in dataset_paths(ds).items():
            if not path:
                continue
            exists = os.path.isfile(path) if key == 'ann_file' else os.path.isdir(path)
            if exists:
                rows.append(Check(f'data {split} {key}', PASS, path))
            else:
                rows.append(Check(f'data {split} {key}', FAIL, f'{split} {key} {path} does '
                                  'not exist', 'see data/README.md (tools/prepare_data.py), '
                                  'or fix data_root with --cfg-options'))
    for where, path in pretrained_paths(cfg):
        if os.path.isfile(path):
            rows.append(Check(f'pretrained {where}', PASS, path))
        else:
            rows.append(Check(f'pretrained {where}', FAIL,
                              f'pretrained file {path} ({where}) does not exist',
                              how_to_get(path)))
    return rows


def config_checks(config: str, cfg_options=None) -> list[Check]:
    """Rows for ``doctor CONFIG``: the config loads, its data and pretrained files exist."""
    try:
        cfg = load_config(config, cfg_options)
    except SegkitError as err:
        return [Check('config', FAIL, str(err), 'fix the path or the config')]
    return [Check('config', PASS, config)] + _rows(cfg)


def preflight(cfg, mode: str = 'train') -> None:
    """Raise a one-line :class:`SegkitError` for the first problem found."""
    splits = ('train', 'val') if mode == 'train' else ('test',)
    for row in _rows(cfg, splits):
        if row.status == FAIL:
            raise SegkitError(f'{row.detail}: {row.fix}')
