"""Checks that a run can start, before the Runner exists (a failure leaves the work dir
untouched): ``preflight`` raises the first problem, ``config_checks`` gives doctor's rows."""
from __future__ import annotations

import difflib
import inspect
import math
import os
import shutil
from pathlib import Path

from segkit.checks import FAIL, PASS, WARN, Check
from segkit.convert.iter2epoch import epoch_length, train_set_size
from segkit.engine.config import dataset_paths, load_config, pretrained_paths, split_datasets
from segkit.engine.config_types import type_rows
from segkit.engine.epoch_checks import epoch_invariant_errors
from segkit.engine.launch import gpu_request_error
from segkit.engine.weights_fit import OPT_OUT, build_model_shapes, problem
from segkit.errors import SegkitError, one_line
from segkit.facts import how_to_get

SAMPLE_PAIRS = 16
# optimizer state per parameter, in copies of the parameters (mmengine saves it)
_OPT_COPIES = {'AdamW': 2, 'Adam': 2, 'SGD': 1, 'RMSprop': 2, 'Adagrad': 1}
LOG_MARGIN = 50e6
CKPT_OVERHEAD = 1.05  # pickle, message hub, scheduler state (demo: 10.83 MB vs 10.56 MB)
DISK_MARGIN = 1.25


def typo_rows(cfg) -> list[Check]:
    """A top-level key that nearly spells a Runner setting is a typo (the Runner ignores it);
    other extra keys are the config's knobs."""
    from mmengine.runner import Runner
    known = sorted(set(inspect.signature(Runner.__init__).parameters) - {'self', 'cfg'} | {
        'default_scope', 'custom_imports', 'runner_type', 'tta_model', 'find_unused_parameters',
        'sync_bn', 'model_wrapper_cfg'})
    typos = [(key, difflib.get_close_matches(key, known, n=1, cutoff=0.8)) for key in cfg.keys()
             if key not in known and not key.startswith('_')]
    return [Check('config keys', FAIL, f"config key '{key}' is not a Runner setting, so it is "
                  f"ignored: did you mean '{close[0]}'?", f"rename '{key}' to '{close[0]}' in the config")
            for key, close in typos if close]


def work_dir_rows(work_dir: str, need_bytes: float, need_what: str) -> list[Check]:
    existing = Path(work_dir)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    unusable = (f'cannot be created: {existing} is a file' if not existing.is_dir() else
                f'is not writable ({existing}: permission denied)'
                if not os.access(existing, os.W_OK | os.X_OK) else '')  # writes nothing
    if unusable:
        return [Check('work dir', FAIL, f'work dir {work_dir} {unusable}',
                      'pass --work-dir to a folder you can write')]
    free = shutil.disk_usage(existing).free
    if free < need_bytes:
        return [Check('work dir', FAIL, f'only {_mb(free)} free for work dir {work_dir}, '
                      f'this run needs about {_mb(need_bytes)}{need_what}',
                      'free disk space or pass --work-dir on another disk')]
    return [Check('work dir', PASS, f'{work_dir} ({_mb(free)} free, needs ~{_mb(need_bytes)})')]


def _mb(n: float) -> str:
    return f'{n / 1e9:.2f} GB' if n >= 1e9 else f'{n / 1e6:.0f} MB'


def _optimizer(cfg) -> str:
    return str(((cfg.get('optim_wrapper') or {}).get('optimizer') or {}).get('type', 'AdamW'))


def checkpoint_bytes(cfg, n_params: int) -> float:
    """One checkpoint: fp32 parameters + the optimizer's copies + overhead."""
    return 4 * n_params * (1 + _OPT_COPIES.get(_optimizer(cfg), 2)) * CKPT_OVERHEAD


def disk_need(cfg, n_params: int, mode: str) -> tuple[float, str]:
    """(bytes this run writes at most, how counted): kept checkpoints + best + a temporary + logs."""
    if mode != 'train' or not n_params:
        return LOG_MARGIN * DISK_MARGIN, ''
    ckpt_bytes = checkpoint_bytes(cfg, n_params)
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    keep = hook.get('max_keep_ckpts', -1)
    if not isinstance(keep, int) or keep <= 0:
        max_epochs = (cfg.get('train_cfg') or {}).get('max_epochs') or 1
        keep = max(1, int(max_epochs) // max(1, int(hook.get('interval', 1) or 1)))
    kept = keep + (1 if hook.get('save_best') else 0) + 1
    return (ckpt_bytes * kept + LOG_MARGIN) * DISK_MARGIN, (
        f' ({kept} checkpoints x {_mb(ckpt_bytes)}: {n_params / 1e6:.2f} M '
        f'parameters + {_optimizer(cfg)} state, + logs, x{DISK_MARGIN})')


def data_rows(cfg, splits) -> list[Check]:
    return [Check(f'data {split} {key}', PASS, path)
            if (os.path.isfile if key == 'ann_file' else os.path.isdir)(path) else
            Check(f'data {split} {key}', FAIL, f'{split} {key} {path} does not exist',
                  'see data/README.md (tools/prepare_data.py), or fix data_root with --cfg-options')
            for split, ds in split_datasets(cfg, splits)
            for key, path in dataset_paths(ds).items() if path]


def sample_rows(cfg, splits) -> list[Check]:
    """The validator's checks on SAMPLE_PAIRS random pairs per split."""
    from segkit.data.validate import validate
    errors = validate(cfg, splits, sample=SAMPLE_PAIRS, workers=1, progress=False).errors
    if not errors:
        return [Check('data sample', PASS,
                      f'{SAMPLE_PAIRS} pairs per split load with labels in range')]
    f = errors[0]
    more = f' (+{len(errors) - 1} more)' if len(errors) > 1 else ''
    where = '' if os.path.basename(f.path) in f.message else f'{f.path}: '
    return [Check(f'data sample {f.split}', FAIL, f'{where}{f.message}{more}',
                  'python tools/validate_dataset.py CONFIG checks every file')]


def pretrained_rows(cfg) -> list[Check]:
    return [Check(f'pretrained {where}', PASS, path) if os.path.isfile(path) else
            Check(f'pretrained {where}', FAIL, f'pretrained file {path} ({where}) does not exist',
                  how_to_get(path)) for where, path in pretrained_paths(cfg)]


def gpu_rows(launcher: str) -> list[Check]:
    import torch
    if launcher == 'none' or not torch.cuda.is_available():
        return []
    err = gpu_request_error(int(os.environ.get('LOCAL_RANK', '0')) + 1)
    if err:
        raise SegkitError(err)  # _guarded makes it the FAIL row
    return [Check('GPUs', PASS, f'{torch.cuda.device_count()} visible')]


def epoch_size(cfg, world: int) -> tuple:
    """(train images, iterations per epoch); (None, None) while the data is missing."""
    loader = cfg.get('train_dataloader') or {}
    try:
        n = train_set_size(cfg)[0]
    except SegkitError:
        return None, None  # the data rows say so
    return n, epoch_length(n, world, loader.get('batch_size', 1), loader.get('drop_last', False))


def schedule_rows(cfg, world: int = 1) -> list[Check]:
    """An LR schedule that ends before training does, phases outside it, and the epoch
    invariants that would stop mmengine, in the user's units."""
    train_cfg = cfg.get('train_cfg') or {}
    max_epochs = train_cfg.get('max_epochs')
    scheds = cfg.get('param_scheduler') or []
    scheds = [scheds] if isinstance(scheds, dict) else scheds
    ends = [s.get('end') for s in scheds if s.get('by_epoch', True) and s.get('end')]
    rows = []
    if max_epochs and ends and max(ends) < max_epochs:
        rows.append(Check('schedule', WARN, f'the LR schedule ends at epoch {max(ends):g} but '
                          f'training runs {max_epochs} epochs (the rest at the final LR)',
                          'use --max-epochs N (stretches the schedule) or edit the knobs'))
    if train_cfg.get('type', 'EpochBasedTrainLoop') != 'EpochBasedTrainLoop':
        return rows
    loader = cfg.get('train_dataloader') or {}
    batch = loader.get('batch_size', 1)
    if loader.get('drop_last', False):
        n, length = epoch_size(cfg, world)
        if length == 0:
            rows.append(Check('epoch', FAIL, (
                f'an epoch has 0 iterations: the train set has {n} images, {world} '
                f'process(es) x batch {batch} = {world * batch} per iteration, and drop_last '
                'drops the partial batch'), f'lower train_dataloader.batch_size to at most '
                f'{max(1, n // world)}, or set train_dataloader.drop_last=False'))
    for i, s in enumerate(scheds):
        if not s.get('by_epoch', True):
            continue
        begin, end = s.get('begin', 0), s.get('end')
        name = f"param_scheduler[{i}] ({s.get('type')}, epochs {begin}..{end})"
        if end is not None and begin >= end:
            rows.append(Check('schedule', FAIL, (
                f'{name} ends before it begins; with max_epochs={max_epochs} the warmup '
                'or an earlier phase runs past the end of training'),
                'make warmup_epochs smaller than max_epochs (the knobs), or use '
                '--max-epochs N, which stretches the schedule'))
        elif isinstance(max_epochs, int) and begin > max_epochs:  # never runs: a warning
            rows.append(Check('schedule', WARN, f'{name} begins at epoch {begin}, after '
                              f'training ends (max_epochs={max_epochs})',
                              'make warmup_epochs smaller than max_epochs'))
    rows += [Check('epoch', FAIL, err, 'fix train_cfg in the config')
             for err in epoch_invariant_errors(cfg)
             if 'val_interval' in err or 'max_epochs must be' in err]
    return rows


def weights_rows(cfg, mode: str, partial_ok: bool = False, shapes: dict | None = None
                 ) -> list[Check]:
    """Every weight file the run loads fits the part of the model it loads into."""
    resume = mode == 'train' and cfg.get('resume')
    rows = []
    for where, path in pretrained_paths(cfg) if shapes is not None else []:
        # a test or a resume overwrites the init weights with load_from: only it counts
        if not os.path.isfile(path) or (where != 'load_from' and (mode != 'train' or resume)):
            continue
        exact = resume and where == 'load_from'
        if partial_ok and not exact:
            continue
        why = problem(path, where, shapes, exact=exact)
        if not why:
            rows.append(Check('weights', PASS, f'{where} {path} fits the model'))
        elif exact:
            rows.append(Check('weights', FAIL, why.replace('load_from', '--resume', 1),
                              'resume only from a checkpoint of this config; start a new run '
                              'with --work-dir NEW_DIR'))
        else:
            rows.append(Check('weights', FAIL, why, f'pass the right file, or {OPT_OUT} if a '
                              'partial load is what you want'))
    return rows


def _guarded(name: str, fn, *args, what: str = '',
             fix: str = 'check the config values it reads (python tools/doctor.py CONFIG)'):
    """``fn(*args)``, or FAIL rows if it raises: preflight itself never crashes."""
    try:
        return fn(*args)
    except SegkitError as err:
        parts = str(err).split(': ', 1)
        return [Check(name, FAIL, parts[0], parts[-1])]
    except Exception as err:  # noqa: BLE001 - the config holds something unexpected
        what = what or f'the {name} check cannot run on this config'
        return [Check(name, FAIL, f'{what} ({one_line(err)})', fix)]


def all_rows(cfg, mode: str = 'train', launcher: str = 'none', work_dir: bool = True,
             world: int = 1, partial_weights: bool = False) -> list[Check]:
    rows = type_rows(cfg)
    if rows:
        return rows  # everything below computes with these values
    splits = ('train', 'val') if mode == 'train' else ('test',)
    rows = _guarded('config keys', typo_rows, cfg)
    shapes = _guarded('model', build_model_shapes, cfg, what='the model does not build',
                      fix='fix the model section of the config')
    if isinstance(shapes, list):  # its FAIL row
        rows, shapes = rows + shapes, None
    if work_dir and cfg.get('work_dir'):
        n_params = sum(math.prod(s) for s in (shapes or {}).values())
        rows += _guarded('work dir', lambda: work_dir_rows(
            cfg.work_dir, *disk_need(cfg, n_params, mode)))
    data = _guarded('data', data_rows, cfg, splits)
    rows += data
    if data and not any(r.status == FAIL for r in data):
        rows += _guarded('data sample', sample_rows, cfg, splits)
    if mode == 'train':
        rows += _guarded('pretrained', pretrained_rows, cfg)
        rows += _guarded('schedule', schedule_rows, cfg, world)
    rows += _guarded('weights', weights_rows, cfg, mode, partial_weights, shapes)
    return rows + _guarded('GPUs', gpu_rows, launcher)


def config_checks(config: str) -> list[Check]:
    """Rows for ``doctor CONFIG``: everything preflight checks, as a table."""
    try:
        return [Check('config', PASS, config)] + all_rows(load_config(config), work_dir=False)
    except SegkitError as err:  # every check below the loading is guarded
        return [Check('config', FAIL, str(err), 'fix the path or the config')]


def raise_first_failure(rows) -> None:
    for row in rows:
        if row.status == FAIL:
            raise SegkitError(f'{row.detail}: {row.fix}')


def preflight(cfg, mode: str = 'train', launcher: str = 'none', world: int = 1,
              partial_weights: bool = False) -> None:
    """Raise a one-line :class:`SegkitError` for the first problem found; print warnings."""
    for row in all_rows(cfg, mode, launcher, world=world, partial_weights=partial_weights):
        raise_first_failure([row])
        if row.status == WARN:
            print(f'[segkit] WARNING: {row.detail}: {row.fix}', flush=True)
