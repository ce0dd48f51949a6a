"""Shared test setup: repo paths, the gpu marker's skip, and small real fixtures."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# keep the tests' own threads from fighting over the 2 CI cores
os.environ.setdefault('OMP_NUM_THREADS', '2')


# a test that starts processes (directly, or through these fixtures) is slow
_PROCESS_CALLS = ('run_py(', '_sh(', 'subprocess.', 'Popen(')
_PROCESS_FIXTURES = {'tiny_run', 'real_run'}


def _starts_processes(item) -> bool:
    import inspect
    fn = getattr(item, 'function', None)
    try:
        src = inspect.getsource(fn) if fn else ''
    except (OSError, TypeError):
        src = ''
    return any(c in src for c in _PROCESS_CALLS) or \
        bool(_PROCESS_FIXTURES & set(getattr(item, 'fixturenames', ())))


def pytest_collection_modifyitems(config, items):
    import torch
    skip = pytest.mark.skip(reason='no CUDA device visible (gpu test)')
    for item in items:
        if 'slow' not in item.keywords and _starts_processes(item):
            item.add_marker(pytest.mark.slow)
        if 'gpu' in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return ROOT


DEMO_CONFIG = 'configs/demo/segformer_mit-tiny_1xb8-40e_demo-64x64.py'


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory) -> Path:
    """A small copy of the built-in demo dataset (16 train / 8 val images)."""
    from segkit.data.shapes import generate
    root = tmp_path_factory.mktemp('demo_data')
    generate(root, seed=0, sizes={'train': 16, 'val': 8})
    return root


def demo_options(data_root, epochs: int = 2, batch: int = 4, workers: int = 0) -> list:
    """--cfg-options that point the demo config at ``data_root`` and shrink it."""
    opts = [f'train_cfg.max_epochs={epochs}', f'train_dataloader.batch_size={batch}',
            'default_hooks.logger.interval=1']
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={data_root}',
                 f'{split}_dataloader.num_workers={workers}']
    return opts


def run_py(*args, cwd=ROOT, env=None, timeout=600, check=True):
    """Run a Python tool of this repo as a real process; return CompletedProcess."""
    import subprocess
    full_env = dict(os.environ, PYTHONUNBUFFERED='1')
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} exited {proc.returncode}\n--- stdout\n'
                             f'{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}')
    return proc


@pytest.fixture(scope='session')
def tiny_run(demo_data, tmp_path_factory) -> Path:
    """A real 2-epoch training of the demo config (work dir with checkpoints + logs)."""
    work = tmp_path_factory.mktemp('tiny_run') / 'work'
    run_py('tools/train.py', DEMO_CONFIG, '--work-dir', work,
           '--cfg-options', *demo_options(demo_data, epochs=2))
    return work
