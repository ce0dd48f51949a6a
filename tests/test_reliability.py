"""Reliability with real processes: kills at random moments (one mid-save), a
truncated newest checkpoint, bad inputs refused before iteration 1, a NaN loss,
a dead rank."""
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import DEMO_CONFIG, ROOT, demo_options, run_py
from segkit.safe_load import safe_load
from segkit.errors import SegkitError

FIXTURES = ROOT / 'tests' / 'fixtures'
ENV = {'PYTHONPATH': f"{FIXTURES}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
       'OMP_NUM_THREADS': '1'}


def _config(tmp_path, hooks='', name='cfg.py') -> Path:
    """The demo config + the fault module (+ extra custom hooks)."""
    cfg = tmp_path / name
    cfg.write_text(
        f"_base_ = ['{ROOT / DEMO_CONFIG}']\n"
        "custom_imports = dict(imports=['segkit.plugins', 'faults'], "
        "allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='PerClassMetricsHook'), dict(type='NonFiniteLossHook'), "
        f"dict(type='ScheduleFollowsConfigHook'){hooks}]\n")
    return cfg


def _train_cmd(cfg, work, data, epochs, *extra):
    return [sys.executable, str(ROOT / 'tools/train.py'), str(cfg), '--work-dir', str(work),
            *extra, '--cfg-options', *demo_options(data, epochs=epochs),
            'default_hooks.checkpoint.max_keep_ckpts=2']


def _final_lr(ckpt: Path) -> float:
    return safe_load(ckpt)['optimizer']['param_groups'][0]['lr']


@pytest.mark.slow
def test_kill9_at_random_moments_then_resume(demo_data, tmp_path):
    cfg = _config(tmp_path)
    epochs = 5
    ref = tmp_path / 'reference'
    subprocess.run(_train_cmd(cfg, ref, demo_data, epochs), env=dict(os.environ, **ENV),
                   check=True, capture_output=True, timeout=600)
    work = tmp_path / 'killed'
    rng = random.Random(1)
    env = dict(os.environ, **ENV, SEGKIT_TEST_SLOW_SAVE='4')
    kills, mid_save, attempts = 0, 0, 0
    while attempts < 12:
        attempts += 1
        extra = ['--resume'] if work.exists() else []
        proc = subprocess.Popen(_train_cmd(cfg, work, demo_data, epochs, *extra), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        if kills == 0:  # the first kill lands during a checkpoint save
            deadline = time.time() + 300
            while time.time() < deadline and proc.poll() is None and \
                    not list(work.glob('*.segkit-tmp-*')):
                time.sleep(0.05)
            time.sleep(0.5)
            mid_save += bool(list(work.glob('*.segkit-tmp-*')))
        elif kills < 3:
            time.sleep(rng.uniform(4, 12))
        else:
            out, _ = proc.communicate(timeout=600)
            assert proc.returncode == 0, out[-3000:]
            break
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
        else:  # it finished before the kill
            out, _ = proc.communicate()
            assert proc.returncode == 0, out[-3000:]
            break
    assert mid_save == 1 and kills >= 2
    last = work / f'epoch_{epochs}.pth'
    assert last.exists()
    meta = safe_load(last)['meta']
    assert meta['epoch'] == epochs
    for ckpt in work.glob('*.pth'):  # every checkpoint left on disk loads
        safe_load(ckpt)
    assert not list(work.glob('*.segkit-tmp-*'))
    assert _final_lr(last) == pytest.approx(_final_lr(ref / f'epoch_{epochs}.pth'), abs=1e-12)


@pytest.mark.slow
def test_truncated_newest_checkpoint_is_skipped_with_a_warning(tiny_run, demo_data, tmp_path):
    work = tmp_path / 'work'
    shutil.copytree(tiny_run, work)
    newest = work / 'epoch_2.pth'
    newest.write_bytes(newest.read_bytes()[:-4096])
    proc = run_py('tools/train.py', DEMO_CONFIG, '--work-dir', work, '--resume',
                  '--cfg-options', *demo_options(demo_data, epochs=3))
    out = proc.stdout + proc.stderr
    assert f'WARNING: skipping checkpoint {newest}: truncated or corrupt' in out
    assert f"continuing from {work / 'epoch_1.pth'}" in out
    assert safe_load(work / 'epoch_3.pth')['meta']['epoch'] == 3


def test_resume_state_check_refuses_a_best_checkpoint_without_optimizer(tiny_run, tmp_path):
    import torch

    from segkit.engine.resume import resolve_resume
    ckpt = safe_load(next(tiny_run.glob('best_mIoU_epoch_*.pth')))
    assert 'optimizer' in ckpt  # segkit's best checkpoints resume
    stock = tmp_path / 'best_mIoU_epoch_2.pth'  # mmseg-style: weights only
    torch.save({'meta': ckpt['meta'], 'state_dict': ckpt['state_dict']}, stock)
    with pytest.raises(SegkitError, match='holds no optimizer / param_schedulers'):
        resolve_resume(str(stock), str(tmp_path))
    assert resolve_resume(str(next(tiny_run.glob('best_mIoU_epoch_*.pth'))), str(tiny_run))[0]


def test_resume_with_more_epochs_follows_the_new_schedule(tiny_run, demo_data, tmp_path):
    """epochs 1-2 were trained for a 2-epoch schedule; --max-epochs 4 stretches it and
    the resumed run follows it (LR not stuck at 0)."""
    work = tmp_path / 'work'
    shutil.copytree(tiny_run, work)
    proc = run_py('tools/train.py', DEMO_CONFIG, '--work-dir', work, '--resume',
                  '--max-epochs', '4', '--cfg-options', *demo_options(demo_data, epochs=2))
    assert 'resumed with a different schedule than the checkpoint' in proc.stdout + proc.stderr
    lrs = [json.loads(x)['lr'] for x in
           sorted(work.glob('*/vis_data/2*.json'))[-1].read_text().split('\n')
           if x.strip() and '"lr"' in x]
    assert lrs and max(lrs) > 0
    assert safe_load(work / 'epoch_4.pth')['meta']['epoch'] == 4


# ------------------------------------------------------------ bad inputs

def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(
        p.read_bytes()).hexdigest() if p.is_file() else None) for p in folder.rglob('*')}


def _broken_copy(demo_data, tmp_path, breaker):
    root = tmp_path / 'data'
    shutil.copytree(demo_data, root)
    breaker(root)
    return root


def _masks(root, split='train'):
    return sorted((root / 'ann_dir' / split).glob('*.png'))


def _write_mask(path, fn):
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(path), fn(m))


BREAKERS = {
    'empty split': (lambda r: [p.unlink() for p in list((r / 'img_dir' / 'train').glob('*'))
                               + _masks(r)], 'has no image/mask pairs'),
    'image without mask': (lambda r: _masks(r)[3].unlink(), 'mask'),
    'label >= num_classes': (lambda r: _write_mask(_masks(r)[2], lambda m: np.where(
        m == 1, 7, m).astype(np.uint8)), '7'),
    '0/255 binary masks': (lambda r: [_write_mask(p, lambda m: (m > 0).astype(np.uint8) * 255)
                                      for p in _masks(r)], '255'),
    'size mismatch': (lambda r: _write_mask(_masks(r)[1], lambda m: cv2.resize(
        m, (48, 48), interpolation=cv2.INTER_NEAREST)), 'size'),
    'corrupt image': (lambda r: (lambda p: p.write_bytes(p.read_bytes()[:300]))(
        sorted((r / 'img_dir' / 'train').glob('*.jpg'))[5]), 'image'),
}


@pytest.fixture
def existing_work_dir(tmp_path):
    work = tmp_path / 'work'
    (work / '20250101_000000').mkdir(parents=True)
    (work / '20250101_000000' / '20250101_000000.log').write_text('an earlier run\n')
    (work / 'notes.txt').write_text('keep me\n')
    return work


def _refused(args, work) -> str:
    """tools/train.py's flow in-process: the one-line error, and nothing written."""
    from segkit.engine.cli import parse_args
    from segkit.engine.flows import train
    before = _snapshot(work)
    with pytest.raises(SegkitError) as err:
        train(parse_args('train', [str(a) for a in args]))
    assert _snapshot(work) == before
    msg = str(err.value)
    assert '\n' not in msg
    print(f'refused: error: {msg}')  # pytest -s shows what each bad input prints
    return msg


@pytest.mark.parametrize('case', list(BREAKERS))
def test_bad_data_is_refused_before_the_first_iteration(case, demo_data, tmp_path,
                                                        existing_work_dir):
    breaker, word = BREAKERS[case]
    root = _broken_copy(demo_data, tmp_path, breaker)
    msg = _refused([DEMO_CONFIG, '--work-dir', existing_work_dir, '--cfg-options',
                    *demo_options(root, 1)], existing_work_dir)
    assert word in msg, msg


def test_missing_data_root(tmp_path, existing_work_dir):
    msg = _refused([DEMO_CONFIG, '--work-dir', existing_work_dir, '--cfg-options',
                    *demo_options(tmp_path / 'nowhere', 1)], existing_work_dir)
    assert 'does not exist' in msg and 'nowhere' in msg


def test_missing_pretrained_file(demo_data, existing_work_dir):
    msg = _refused([DEMO_CONFIG, '--work-dir', existing_work_dir, '--cfg-options',
                    *demo_options(demo_data, 1), 'model.backbone.init_cfg.type=Pretrained',
                    'model.backbone.init_cfg.checkpoint=checkpoints/mit_b2_mmseg.pth'],
                   existing_work_dir)
    assert 'pretrained file checkpoints/mit_b2_mmseg.pth' in msg and 'convert_weights.py mit' in msg


def test_unknown_config_key(demo_data, existing_work_dir):
    msg = _refused([DEMO_CONFIG, '--work-dir', existing_work_dir, '--cfg-options',
                    *demo_options(demo_data, 1), 'optim_wraper.type=OptimWrapper'],
                   existing_work_dir)
    assert "'optim_wraper'" in msg and "did you mean 'optim_wrapper'" in msg


def test_unwritable_work_dir(demo_data, tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    from segkit.engine.cli import parse_args
    from segkit.engine.flows import train
    with pytest.raises(SegkitError, match='cannot be created: .* is a file'):
        train(parse_args('train', [DEMO_CONFIG, '--work-dir', str(blocker / 'run'),
                                   '--cfg-options', *map(str, demo_options(demo_data, 1))]))


def test_cli_exit_code_and_one_line(demo_data, tmp_path, existing_work_dir):
    root = _broken_copy(demo_data, tmp_path, BREAKERS['label >= num_classes'][0])
    before = _snapshot(existing_work_dir)
    proc = run_py('tools/train.py', DEMO_CONFIG, '--work-dir', existing_work_dir,
                  '--cfg-options', *demo_options(root, 1), check=False)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and '7' in last
    assert 'Epoch(train)' not in proc.stdout + proc.stderr
    assert _snapshot(existing_work_dir) == before


def test_port_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(('', 0))
        s.listen(1)
        port = s.getsockname()[1]
        proc = subprocess.run([str(ROOT / 'tools/dist_train.sh'), DEMO_CONFIG, '2'], cwd=ROOT,
                              env=dict(os.environ, PORT=str(port)), capture_output=True,
                              text=True, timeout=120)
    assert proc.returncode == 2
    assert f'PORT={port} is already in use' in proc.stderr


# ------------------------------------------------------------ NaN, dead rank

@pytest.mark.slow
def test_nan_loss_stops_with_the_message_and_keeps_the_last_good_checkpoint(demo_data,
                                                                            tmp_path):
    cfg = _config(tmp_path, ", dict(type='NaNAtHook', epoch=2, iter=2)")
    work = tmp_path / 'work'
    proc = subprocess.run(_train_cmd(cfg, work, demo_data, 3), env=dict(os.environ, **ENV),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: non-finite loss at epoch 2, iteration 6 (2 of the epoch)')
    assert 'decode.loss_ce=nan' in last and str(work / 'epoch_1.pth') in last
    assert not (work / 'epoch_2.pth').exists()
    import torch
    state = safe_load(work / 'epoch_1.pth')['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.mark.slow
def test_a_dead_rank_does_not_hang_the_others(demo_data, tmp_path):
    """Two nodes on loopback (separate torchrun agents, so nothing kills rank 0 for
    us): rank 1 is SIGKILLed mid-epoch; rank 0 must exit, with a clear message,
    well within the configured distributed timeout."""
    timeout_s = 60
    cfg = _config(tmp_path, ", dict(type='DieAtHook', rank=1, epoch=2, iter=2)")
    work = tmp_path / 'work'
    port = subprocess.run([sys.executable, '-m', 'segkit.engine.launch', 'free-port'], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()
    env = dict(os.environ, **ENV, NNODES='2', MASTER_ADDR='127.0.0.1', PORT=port)
    cmd = [str(ROOT / 'tools/dist_train.sh'), str(cfg), '1', '--work-dir', str(work),
           '--cfg-options', *map(str, demo_options(demo_data, epochs=3)),
           f'env_cfg.dist_cfg.timeout={timeout_s}']
    nodes = [subprocess.Popen(cmd, cwd=ROOT, env=dict(env, NODE_RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in (0, 1)]
    out1 = nodes[1].communicate(timeout=600)[0]
    died = time.time()
    out0 = nodes[0].communicate(timeout=timeout_s + 120)[0]
    waited = time.time() - died
    assert '[faults] rank 1 dies now' in out1
    assert nodes[0].returncode != 0
    assert waited < timeout_s, waited
    assert 'lost contact with another rank' in out0, out0[-3000:]
