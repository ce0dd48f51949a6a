"""Safe checkpoint loading: real resume checkpoints load with weights_only=True,
crafted ones are refused before their payload runs."""
import os
import sys
from pathlib import Path

import pytest
import torch

from conftest import DEMO_CONFIG, demo_options, run_py
from segkit.safe_load import safe_load
from segkit.errors import SegkitError


def test_resume_checkpoint_of_a_real_run_loads(tiny_run):
    from mmengine.logging import HistoryBuffer
    ckpt = safe_load(tiny_run / 'epoch_2.pth')
    assert {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'} <= set(ckpt)
    buffers = ckpt['message_hub']['log_scalars']
    assert isinstance(buffers['train/loss'], HistoryBuffer)
    assert buffers['train/loss'].current() > 0
    assert ckpt['meta']['epoch'] == 2


def test_stock_torch_load_fails_and_segkit_import_fixes_it(tiny_run):
    """The problem users hit on torch >= 2.6, and the fix, in fresh interpreters."""
    code = "import torch; torch.load({!r}, weights_only=True); print('LOADED')"
    path = str(tiny_run / 'epoch_2.pth')
    stock = run_py('-c', code.format(path), check=False)
    assert stock.returncode != 0 and 'HistoryBuffer' in stock.stderr
    fixed = run_py('-c', 'import segkit; ' + code.format(path))
    assert 'LOADED' in fixed.stdout


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


class _GetattrEscape:
    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': _RunsShell(marker)}, evil)
    with pytest.raises(SegkitError) as err:
        safe_load(evil)
    msg = str(err.value)
    assert str(evil) in msg and 'posix.system' in msg and '\n' not in msg
    assert not marker.exists()
    # the same through mmengine's loader (what Runner.resume and init_cfg use)
    from mmengine.runner.checkpoint import _load_checkpoint
    with pytest.raises(SegkitError):
        _load_checkpoint(str(evil), map_location='cpu')
    assert not marker.exists()


def test_getattr_is_restricted_to_history_buffer_statistics(tmp_path):
    evil = tmp_path / 'getattr.pth'
    torch.save({'x': _GetattrEscape()}, evil)
    with pytest.raises(SegkitError, match=r"getattr\(HistoryBuffer, '__init__'\)"):
        safe_load(evil)


def test_truncated_checkpoint_gives_one_line_error(tiny_run, tmp_path):
    data = (tiny_run / 'epoch_1.pth').read_bytes()
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(data[: len(data) - 200])
    with pytest.raises(SegkitError, match='truncated or corrupt'):
        safe_load(cut)


def test_train_refuses_a_malicious_resume_checkpoint(demo_data, tmp_path):
    """End to end: tools/train.py --resume EVIL exits 2 with one line, payload unrun."""
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save({'meta': _RunsShell(marker), 'state_dict': {}}, evil)
    proc = run_py('tools/train.py', DEMO_CONFIG, '--work-dir', tmp_path / 'w',
                  '--resume', evil, '--cfg-options', *demo_options(demo_data, 1),
                  check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith('error: refusing to load checkpoint')
    assert not marker.exists()
