"""Guard rails with real processes: one run per work dir, weights that must fit the
model, wrong-typed config values, schedule arithmetic in epochs, a full disk, errors
through the launchers, Ctrl-C with the resume command.

Every refusal: exit 2, one line naming the problem, no traceback, and the work dir
byte-identical before and after.
"""
import hashlib
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DEMO_CONFIG, ROOT, demo_options, run_py

ENV = {'OMP_NUM_THREADS': '1'}


def snapshot(folder: Path) -> dict:
    """{relative path: sha256} of every file under ``folder`` (hidden ones too)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob('*')) if p.is_file()}


def refused(proc, *phrases):
    """Exit 2, the last stderr line is the one-line error holding ``phrases``."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, err[-3000:])
    assert 'Traceback' not in err, err[-3000:]
    last = err.splitlines()[-1]
    assert last.startswith('error: '), last
    for phrase in phrases:
        assert phrase in last, (phrase, last)
    print(last)  # pytest -s shows what each bad input prints
    return last


@pytest.fixture
def kept_work_dir(tmp_path) -> Path:
    """A work dir holding files of an earlier (refused or finished) run and a stale
    lock of a dead process: a refusal must leave every byte of it as it was."""
    wd = tmp_path / 'work dir'  # a space: printed commands must quote it
    wd.mkdir()
    (wd / 'notes.txt').write_text('earlier results\n')
    (wd / '.segkit.lock').write_text('{"pid": 999999, "host": "gone", "started": "-"}\n')
    return wd


def train(data, work, *extra, options=(), epochs=2, check=False, env=None):
    return run_py('tools/train.py', DEMO_CONFIG, '--work-dir', work, *extra,
                  '--cfg-options', *demo_options(data, epochs=epochs), *options,
                  env={**ENV, **(env or {})}, check=check)


# --------------------------------------------------------------- 3. types, epochs


def refused_in_process(work, *argv) -> str:
    """tools/train.py's flow in this process (cheaper than a process per case):
    the one-line SegkitError, and the work dir untouched."""
    from segkit.engine.cli import parse_args
    from segkit.engine.flows import train as train_flow
    from segkit.errors import SegkitError
    before = snapshot(work)
    with pytest.raises(SegkitError) as err:
        train_flow(parse_args('train', [DEMO_CONFIG, '--work-dir', str(work),
                                        *map(str, argv)]))
    assert '\n' not in str(err.value)
    assert snapshot(work) == before
    print(f'error: {err.value}')
    return str(err.value)


TYPE_CASES = [
    ('train_cfg.max_epochs=abc', ['train_cfg.max_epochs', "'abc'", 'positive integer']),
    ('model.decode_head.num_classes=', ['model.decode_head.num_classes', 'empty']),
    ('optim_wrapper.optimizer.lr=(0.006,)', ['optim_wrapper.optimizer.lr', 'tuple',
                                             'trailing comma']),
    ('train_dataloader.batch_size=0', ['train_dataloader.batch_size', 'positive integer']),
    ('train_cfg.val_interval=[1,2]', ['train_cfg.val_interval', 'list']),
    ('default_hooks.checkpoint.max_keep_ckpts=x', ['max_keep_ckpts', 'an integer']),
    ('train_dataloader.drop_last=maybe', ['train_dataloader.drop_last', 'True or False']),
]


@pytest.mark.slow
@pytest.mark.parametrize('option, phrases', TYPE_CASES[:2])
def test_wrong_typed_or_empty_values_name_the_key(option, phrases, demo_data,
                                                  kept_work_dir):
    before = snapshot(kept_work_dir)
    proc = train(demo_data, kept_work_dir, options=[option])
    refused(proc, 'config key', *phrases)
    assert snapshot(kept_work_dir) == before


@pytest.mark.parametrize('option, phrases', TYPE_CASES[2:])
def test_more_wrong_types_in_process(option, phrases, demo_data, kept_work_dir):
    msg = refused_in_process(kept_work_dir, '--cfg-options', *demo_options(demo_data), option)
    assert 'config key' in msg and all(p in msg for p in phrases), msg


@pytest.mark.slow
def test_zero_length_epoch_in_images_and_batch(demo_data, kept_work_dir):
    """16 train images, batch 20, drop_last: mmengine's "epoch_length ... got 0"."""
    before = snapshot(kept_work_dir)
    proc = train(demo_data, kept_work_dir, options=['train_dataloader.batch_size=20',
                                                    'train_dataloader.drop_last=True'])
    refused(proc, '0 iterations', '16 images', 'batch 20', 'drop_last')
    assert snapshot(kept_work_dir) == before


def test_warmup_beyond_the_end_in_epochs(demo_data, kept_work_dir):
    """Warmup to epoch 10 of a 4-epoch run: mmengine's "begin=10, end=4" (iterations)."""
    msg = refused_in_process(kept_work_dir, '--cfg-options', *demo_options(demo_data),
                             'train_cfg.max_epochs=4', 'param_scheduler.0.end=10',
                             'param_scheduler.1.begin=10', 'param_scheduler.1.end=4')
    assert all(p in msg for p in ('epochs 10..4', 'max_epochs=4', 'warmup_epochs')), msg


# --------------------------------------------------------------- 2. weights


def _official_mit_file(path: Path) -> Path:
    """The demo backbone's tensors under the SegFormer release's key names (what
    tools/convert_weights.py mit converts): none of them fit mmseg's MiT."""
    import torch
    sd = {}
    dims, depths = [16, 32, 80, 128], [2, 2, 2, 2]
    for i, (d, n) in enumerate(zip(dims, depths), start=1):
        sd[f'patch_embed{i}.proj.weight'] = torch.zeros(d, 3, 3, 3)
        sd[f'patch_embed{i}.norm.weight'] = torch.zeros(d)
        for j in range(n):
            for k in ('norm1.weight', 'attn.q.weight', 'attn.kv.weight', 'attn.proj.weight',
                      'norm2.weight', 'mlp.fc1.weight', 'mlp.fc2.weight'):
                sd[f'block{i}.{j}.{k}'] = torch.zeros(d)
        sd[f'norm{i}.weight'] = torch.zeros(d)
    torch.save(sd, path)
    return path


@pytest.fixture(scope='module')
def other_model_ckpt(tiny_run, tmp_path_factory) -> Path:
    """A complete resumable checkpoint (optimizer, schedulers, message hub) of
    another model: the demo with twice the widths."""
    import torch
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    from segkit.engine.config import load_config
    from segkit.safe_load import safe_load
    register_all_modules()
    cfg = load_config(DEMO_CONFIG, {'model.backbone.embed_dims': 32,
                                    'model.decode_head.in_channels': [32, 64, 160, 256]})
    ckpt = safe_load(tiny_run / 'epoch_2.pth')
    ckpt['state_dict'] = MODELS.build(cfg.model).state_dict()
    out = tmp_path_factory.mktemp('other') / 'other_model.pth'
    torch.save(ckpt, out)
    return out


@pytest.mark.slow
def test_unconverted_mit_checkpoint_is_refused(demo_data, kept_work_dir, tmp_path):
    src = _official_mit_file(tmp_path / 'mit_b0_official.pth')  # (DictAction drops spaces)
    before = snapshot(kept_work_dir)
    proc = train(demo_data, kept_work_dir, options=[f'model.pretrained={src}'])
    last = refused(proc, '0 of', 'backbone parameters match', 'unconverted MiT',
                   'python tools/convert_weights.py mit')
    assert f'mit {shlex.quote(str(src))} ' in last
    assert snapshot(kept_work_dir) == before
    # the explicit opt-out: a deliberate partial load passes the checks
    ok = train(demo_data, kept_work_dir, '--partial-weights', '--preflight-only',
               options=[f'model.pretrained={src}'])
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert snapshot(kept_work_dir) == before


@pytest.mark.slow
def test_resume_and_test_with_another_models_checkpoint(demo_data, other_model_ckpt,
                                                        kept_work_dir):
    before = snapshot(kept_work_dir)
    proc = train(demo_data, kept_work_dir, '--resume', other_model_ckpt)
    refused(proc, '--resume', 'model parameters match', 'differ in shape',
            'resume only from a checkpoint of this config')
    assert snapshot(kept_work_dir) == before
    proc = run_py('tools/test.py', DEMO_CONFIG, other_model_ckpt, '--work-dir', kept_work_dir,
                  '--cfg-options', *demo_options(demo_data), env=ENV, check=False)
    refused(proc, 'model parameters match', '--partial-weights')
    assert snapshot(kept_work_dir) == before


# --------------------------------------------------------------- 1. one run per work dir
# and 7. Ctrl-C ends with the exact resume command


@pytest.mark.slow
def test_second_run_into_a_work_dir_in_use_is_refused(demo_data, tmp_path):
    work = tmp_path / 'a work dir'
    first_out = tmp_path / 'first.out'
    cmd = [sys.executable, 'tools/train.py', DEMO_CONFIG, '--work-dir', str(work),
           '--cfg-options', *demo_options(demo_data, epochs=30)]
    with open(first_out, 'w') as out:
        first = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, **ENV),
                                 stdout=out, stderr=subprocess.PIPE, text=True)
        try:
            lock = work / '.segkit.lock'
            deadline = time.time() + 300
            while time.time() < deadline and 'Epoch(train)' not in first_out.read_text():
                assert first.poll() is None, first.communicate()[1][-3000:]
                time.sleep(0.5)
            assert str(first.pid) in lock.read_text()
            second = train(demo_data, work)
            refused(second, 'in use by another run', f'PID {first.pid}', 'started')
            # Ctrl-C: the run stops with the exact command that continues it
            first.send_signal(signal.SIGINT)
            err = first.communicate(timeout=120)[1]
        finally:
            if first.poll() is None:
                first.kill()
    assert first.returncode == 130, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith('interrupted: continue with ') and '--resume' in last, last
    assert shlex.quote(str(work)) in last  # shell-quoted: the path has a space
    resume = shlex.split(last.split('continue with ', 1)[1])
    assert resume[:2] == ['python', 'tools/train.py']
    # the dead run's lock file stays but never blocks: its command passes the checks
    before = snapshot(work)
    proc = run_py(*resume[1:], '--preflight-only', env=ENV, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert snapshot(work) == before


# --------------------------------------------------------------- 5. disk


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / 'small disk'
    mnt.mkdir()
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=25m', 'tmpfs', str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f'cannot mount a 25 MB tmpfs (needs root): {proc.stderr.strip()}')
    yield mnt
    subprocess.run(['umount', '-l', str(mnt)], capture_output=True)


@pytest.mark.slow
def test_full_disk_is_refused_up_front_and_mid_save_keeps_the_last_checkpoint(
        demo_data, small_disk):
    work = small_disk / 'work'
    refused(train(demo_data, work, epochs=1), 'MB free', 'needs about', 'checkpoints x',
            'parameters')
    assert not work.exists()
    # past the estimate (--no-preflight): the disk fills during the first epoch's saves
    proc = train(demo_data, work, '--no-preflight', epochs=1)
    refused(proc, 'no space left', 'last_checkpoint are intact', '--resume')
    assert not list(work.glob('.*segkit-tmp*')), list(work.iterdir())
    target = Path((work / 'last_checkpoint').read_text().strip())
    from segkit.engine.resume import checkpoint_problem
    assert target.is_file() and checkpoint_problem(target) is None


def test_disk_estimate_is_close_to_a_real_checkpoint(tiny_run):
    """The estimate of one checkpoint against the demo's real one (same model)."""
    import math

    from segkit.engine.config import load_config
    from segkit.engine.preflight import checkpoint_bytes, disk_need
    from segkit.engine.weights_fit import build_model_shapes
    cfg = load_config(DEMO_CONFIG, {'train_cfg.max_epochs': 2})
    n = sum(math.prod(s) for s in build_model_shapes(cfg).values())
    need, _ = disk_need(cfg, n, 'train')
    real = (tiny_run / 'epoch_2.pth').stat().st_size
    per_ckpt = checkpoint_bytes(cfg, n)
    print(f'estimate {per_ckpt / 1e6:.2f} MB per checkpoint, real {real / 1e6:.2f} MB')
    assert 0.95 * real <= per_ckpt <= 1.2 * real, (per_ckpt, real)
    assert need > 3 * real  # max_keep_ckpts=2 + best + one temporary


# --------------------------------------------------------------- 4. launchers


@pytest.mark.slow
@pytest.mark.parametrize('where', ['preflight', 'rank'])
def test_dist_train_refusal_ends_with_the_one_line(where, demo_data, kept_work_dir):
    """Refused before torchrun (preflight) or inside the ranks (preflight skipped):
    either way the one line is last, exit 2, no ChildFailedError wall."""
    before = snapshot(kept_work_dir)
    env = dict(os.environ, **ENV, SEGKIT_SKIP_PREFLIGHT='1' if where == 'rank' else '0')
    proc = subprocess.run(
        [str(ROOT / 'tools/dist_train.sh'), DEMO_CONFIG, '2', '--work-dir', str(kept_work_dir),
         '--cfg-options', *demo_options(demo_data), 'train_cfg.max_epochs=abc'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    refused(proc, 'train_cfg.max_epochs', 'positive integer')
    assert 'ChildFailedError' not in proc.stderr
    assert snapshot(kept_work_dir) == before


# --------------------------------------------------------------- 3. preflight never raises


@pytest.mark.parametrize('option', [
    'train_dataloader.dataset.data_prefix=5',
    'default_hooks.checkpoint=3',
    'param_scheduler=7',
    'train_dataloader=5',
])
def test_values_of_unexpected_shape_give_one_line(option, demo_data, kept_work_dir):
    """Sections of the wrong shape: named, never a traceback."""
    msg = refused_in_process(kept_work_dir, '--cfg-options', *demo_options(demo_data), option)
    assert f"config key {option.split('=')[0]} is" in msg, msg
