"""scripts/tmux_train.sh with a real tmux server that was already running (its own
environment must not win), on a private socket (TMUX_TMPDIR) so no one else's sessions
are touched: the caller's variables reach training, a bad GPUS creates nothing, a failed
start ends its pane with the reason and the resume hint, --resume restarts training in
the surviving session with TensorBoard kept on its port."""
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import DEMO_CONFIG, ROOT, demo_options

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which('tmux') is None, reason='tmux is not installed')]


@pytest.fixture
def tmux(tmp_path):
    """A private tmux server with a dummy session already running; yields run(args)."""
    sock = tmp_path / 'tmux'
    sock.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('TMUX', 'TMUX_PANE')}
    env.update(TMUX_TMPDIR=str(sock), PYTHONUNBUFFERED='1')

    def run(*args, **extra):
        return subprocess.run([str(a) for a in args], cwd=ROOT, env=dict(env, **extra),
                              capture_output=True, text=True, timeout=120)

    assert run('tmux', 'new-session', '-d', '-s', 'dummy', 'sleep 600').returncode == 0
    yield run
    run('tmux', 'kill-server')  # the private server: only this test's sessions


def _sessions(tmux) -> set:
    return set(tmux('tmux', 'list-sessions', '-F', '#{session_name}').stdout.split())


def _pane(tmux, session: str) -> str:
    return tmux('tmux', 'capture-pane', '-p', '-J', '-t', f'={session}:train').stdout


def _wait(predicate, timeout=300, every=0.3):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(every)
    return predicate()


def _train_env(work: Path) -> dict:
    """The environment of the training process of ``work`` (from /proc)."""
    for proc in Path('/proc').iterdir():
        try:
            cmd = (proc / 'cmdline').read_bytes().split(b'\0')
            if b'tools/train.py' in b' '.join(cmd) and str(work).encode() in cmd:
                raw = (proc / 'environ').read_bytes().split(b'\0')
                return dict(x.decode().split('=', 1) for x in raw if b'=' in x)
        except OSError:
            continue
    return {}


def test_tmux_train_env_failed_start_and_resume(tmux, demo_data, tmp_path):
    script = ROOT / 'scripts/tmux_train.sh'
    work = tmp_path / 'work'
    before = _sessions(tmux)
    bad = tmux(script, DEMO_CONFIG, 'abc', '--work-dir', work)
    assert bad.returncode == 2 and "GPUS must be a positive number, got 'abc'" in bad.stderr
    assert tmux(script, 'configs/nope.py', 1).returncode == 2
    assert _sessions(tmux) == before  # nothing created

    # a start that fails (no such data): the caller's variables reach the process,
    # the pane ends with the reason and how to resume
    opts = demo_options(demo_data, epochs=1)
    start = tmux(script, DEMO_CONFIG, 1, '--work-dir', work, '--cfg-options', *opts,
                 'train_dataloader.dataset.data_root=/nonexistent',
                 CUDA_VISIBLE_DEVICES='-1', SEGKIT_TEST_VAR='from the caller',
                 OMP_NUM_THREADS='1')
    assert start.returncode == 0, start.stderr
    session = re.search(r"started tmux session '([^']+)'", start.stdout).group(1)
    assert len(session) <= 24 and session in _sessions(tmux)
    port = re.search(r'http://127.0.0.1:(\d+)', start.stdout).group(1)
    env = _wait(lambda: _train_env(work), timeout=60, every=0.1)
    assert env.get('CUDA_VISIBLE_DEVICES') == '-1'
    assert env.get('SEGKIT_TEST_VAR') == 'from the caller'
    pane = _wait(lambda: 'resume with:' in _pane(tmux, session) and _pane(tmux, session))
    lines = [x for x in pane.splitlines() if x.strip() and not x.startswith('Pane is dead')]
    assert 'data_root /nonexistent does not exist' in lines[-2]
    assert lines[-1].startswith(f'resume with: scripts/tmux_train.sh {DEMO_CONFIG} 1 ')
    assert lines[-1].endswith('--resume')

    # the same command without --resume is refused; with --resume it restarts in the
    # same session, and TensorBoard keeps its port
    again = tmux(script, DEMO_CONFIG, 1, '--work-dir', work, '--cfg-options', *opts)
    assert again.returncode == 2 and f'tmux attach -t {session}' in again.stderr
    resumed = tmux(script, DEMO_CONFIG, 1, '--work-dir', work, '--cfg-options', *opts,
                   '--resume', OMP_NUM_THREADS='1')
    assert resumed.returncode == 0 and f'http://127.0.0.1:{port}' in resumed.stdout
    assert _wait(lambda: 'training finished' in _pane(tmux, session))
    assert (work / 'epoch_1.pth').exists() and (work / 'tensorboard.port').read_text().strip() == port

    # TensorBoard serves the one run of this work dir with the grouped tags
    def tags():
        try:
            with urllib.request.urlopen(f'http://127.0.0.1:{port}/data/plugin/scalars/tags',
                                        timeout=5) as r:
                found = json.load(r)
        except OSError:
            return None
        return found if 'val/mIoU' in found.get('tensorboard', {}) else None
    served = _wait(tags, timeout=90, every=3)
    assert served and list(served) == ['tensorboard']
    assert {'train/loss', 'train/lr', 'val/mIoU'} <= set(served['tensorboard'])
