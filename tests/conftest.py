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


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='no CUDA device visible (gpu test)')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return ROOT
