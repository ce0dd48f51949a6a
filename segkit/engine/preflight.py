"""Checks that a run can start, before anything is built or written.

``preflight(cfg)`` runs in ``tools/train.py`` / ``tools/test.py`` before the
Runner exists (so a failure leaves the work dir untouched) and raises a one-line
:class:`SegkitError` for the first problem; ``config_checks(CONFIG)`` gives the
same checks as doctor rows. In order: config keys that look like typos of a
Runner setting, the work dir (writable, free space), data roots and splits, a
sample of image/label pairs (the validator's checks), pretrained files, GPUs.
"""
from __future__ import annotations

import difflib
import inspect
import os
import shutil
import tempfile
from pathlib import Path

from segkit.checks import FAIL, PASS, WARN, Check
from segkit.engine.config import dataset_paths, load_config, pretrained_paths, split_datasets
from segkit.engine.launch import gpu_request_error
from segkit.errors import SegkitError
from segkit.facts import how_to_get

MIN_FREE_GB = 1.0
SAMPLE_PAIRS = 16


def runner_keys() -> set:
    """Top-level config keys mmengine's Runner reads (plus mmseg's common extras)."""
    from mmengine.runner import Runner
    keys = set(inspect.signature(Runner.__init__).parameters) - {'self', 'cfg'}
    return keys | {'default_scope', 'custom_imports', 'runner_type', 'tta_model',
                   'find_unused_parameters', 'sync_bn', 'model_wrapper_cfg'}


def typo_rows(cfg) -> list[Check]:
    """A top-level key that is not a Runner setting but nearly spells one is a typo
    (the Runner would silently ignore it); other extra keys are the config's knobs."""
    known = runner_keys()
    rows = []
    for key in cfg.keys():
        if key in known or key.startswith('_'):
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
        if close:
            rows.append(Check('config keys', FAIL, f"config key '{key}' is not a Runner "
                              f"setting, so it is ignored: did you mean '{close[0]}'?",
                              f"rename '{key}' to '{close[0]}' in the config"))
    return rows


def work_dir_rows(work_dir: str, min_free_gb: float = MIN_FREE_GB) -> list[Check]:
    path = Path(work_dir)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return [Check('work dir', FAIL, f'work dir {work_dir} cannot be created: {existing} '
                      'is a file', 'pass --work-dir to a folder you can write')]
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix='.segkit-write-test-'):
            pass
    except OSError as err:
        return [Check('work dir', FAIL, f'work dir {work_dir} is not writable '
                      f'({err.strerror or err})', 'pass --work-dir to a folder you can write')]
    free = shutil.disk_usage(existing).free / 1e9
    if free < min_free_gb:
        return [Check('work dir', FAIL, f'only {free:.2f} GB free for work dir {work_dir}',
                      'free disk space or pass --work-dir on another disk')]
    return [Check('work dir', PASS, f'{work_dir} ({free:.0f} GB free)')]


def data_rows(cfg, splits) -> list[Check]:
    rows = []
    for split, ds in split_datasets(cfg, splits):
        for key, path in dataset_paths(ds).items():
            if not path:
                continue
            exists = os.path.isfile(path) if key == 'ann_file' else os.path.isdir(path)
            if exists:
                rows.append(Check(f'data {split} {key}', PASS, path))
            else:
                rows.append(Check(f'data {split} {key}', FAIL,
                                  f'{split} {key} {path} does not exist',
                                  'see data/README.md (tools/prepare_data.py), or fix '
                                  'data_root with --cfg-options'))
    return rows


def sample_rows(cfg, splits, sample: int = SAMPLE_PAIRS) -> list[Check]:
    """The validator's checks on ``sample`` random pairs per split."""
    from segkit.data.validate import validate
    report = validate(cfg, splits, sample=sample, workers=1, progress=False)
    if report.errors:
        f = report.errors[0]
        more = f' (+{len(report.errors) - 1} more)' if len(report.errors) > 1 else ''
        where = '' if os.path.basename(f.path) in f.message else f'{f.path}: '
        return [Check(f'data sample {f.split}', FAIL, f'{where}{f.message}{more}',
                      'python tools/validate_dataset.py CONFIG checks every file')]
    return [Check('data sample', PASS, f'{sample} pairs per split load with labels in range')]


def pretrained_rows(cfg) -> list[Check]:
    rows = []
    for where, path in pretrained_paths(cfg):
        if os.path.isfile(path):
            rows.append(Check(f'pretrained {where}', PASS, path))
        else:
            rows.append(Check(f'pretrained {where}', FAIL,
                              f'pretrained file {path} ({where}) does not exist',
                              how_to_get(path)))
    return rows


def gpu_rows(launcher: str) -> list[Check]:
    import torch
    if launcher == 'none' or not torch.cuda.is_available():
        return []
    err = gpu_request_error(int(os.environ.get('LOCAL_RANK', '0')) + 1)
    if err:
        return [Check('GPUs', FAIL, err.split(': ')[0], err.split(': ', 1)[-1])]
    return [Check('GPUs', PASS, f'{torch.cuda.device_count()} visible')]


def schedule_rows(cfg) -> list[Check]:
    """An LR schedule that ends before training does (max_epochs raised through
    --cfg-options without moving the schedulers) trains the rest at the final LR."""
    scheds = cfg.get('param_scheduler') or []
    scheds = [scheds] if isinstance(scheds, dict) else scheds
    max_epochs = (cfg.get('train_cfg') or {}).get('max_epochs')
    ends = [s.get('end') for s in scheds if s.get('by_epoch', True) and s.get('end')]
    if max_epochs and ends and max(ends) < max_epochs:
        return [Check('schedule', WARN, f'the LR schedule ends at epoch {max(ends):g} but '
                      f'training runs {max_epochs} epochs (the rest at the final LR)',
                      'use --max-epochs N (stretches the schedule) or edit the knobs')]
    return []


def all_rows(cfg, mode: str = 'train', launcher: str = 'none', data_sample: bool = True,
             work_dir: bool = True) -> list[Check]:
    splits = ('train', 'val') if mode == 'train' else ('test',)
    rows = typo_rows(cfg)
    if work_dir and cfg.get('work_dir'):
        rows += work_dir_rows(cfg.work_dir)
    data = data_rows(cfg, splits)
    rows += data
    if data_sample and data and not any(r.status == FAIL for r in data):
        rows += sample_rows(cfg, splits)
    if mode == 'train':
        rows += pretrained_rows(cfg) + schedule_rows(cfg)
    rows += gpu_rows(launcher)
    return rows


def config_checks(config: str, cfg_options=None) -> list[Check]:
    """Rows for ``doctor CONFIG``: everything preflight checks, as a table."""
    try:
        cfg = load_config(config, cfg_options)
    except SegkitError as err:
        return [Check('config', FAIL, str(err), 'fix the path or the config')]
    try:
        return [Check('config', PASS, config)] + all_rows(cfg, work_dir=False)
    except SegkitError as err:
        return [Check('config', FAIL, str(err), 'fix the config')]


def preflight(cfg, mode: str = 'train', launcher: str = 'none') -> None:
    """Raise a one-line :class:`SegkitError` for the first problem found."""
    for row in all_rows(cfg, mode, launcher):
        if row.status == FAIL:
            raise SegkitError(f'{row.detail}: {row.fix}')
        if row.status == WARN:
            print(f'[segkit] WARNING: {row.detail}: {row.fix}', flush=True)
