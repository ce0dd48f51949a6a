"""Launchers as real processes on CPU: torchrun + gloo, multi-node on loopback,
concurrent jobs, test and inference, DRY_RUN command assembly (tmux: test_tmux.py)."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DEMO_CONFIG, ROOT, demo_options, run_py

pytestmark = pytest.mark.slow


def _trace_config(tmp_path) -> Path:
    """The demo config plus the test fixture SampleTraceHook (which samples each rank
    saw); _dist_env puts tests/fixtures on the processes' PYTHONPATH."""
    cfg = tmp_path / 'demo_traced.py'
    cfg.write_text(f"_base_ = ['{ROOT / DEMO_CONFIG}']\n"
                   "custom_imports = dict(imports=['segkit.plugins', 'sample_trace'], "
                   "allow_failed_imports=False)\n"
                   "custom_hooks = [dict(type='PerClassMetricsHook'), "
                   "dict(type='SampleTraceHook')]\n")
    return cfg


def _sh(*args, env=None, timeout=600, check=True):
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
    proc = subprocess.run([str(a) for a in args], cwd=ROOT, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} exited {proc.returncode}\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-3000:]}')
    return proc


def _dist_env(**kw):
    # one thread per process: two gloo ranks share the 2 CI cores
    fixtures = str(ROOT / 'tests' / 'fixtures')
    return dict(OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join(
        p for p in (fixtures, os.environ.get('PYTHONPATH')) if p),
        **{k: str(v) for k, v in kw.items()})


def _traces(work: Path) -> dict:
    """{(rank, epoch): [sample paths]} from SampleTraceHook's files."""
    out = {}
    for f in sorted((work / 'sample_trace').glob('rank*_epoch*.txt')):
        rank, epoch = map(int, re.findall(r'\d+', f.stem))
        out[(rank, epoch)] = f.read_text().split()
    return out


def test_dist_train_two_gloo_processes(demo_data, tmp_path):
    work = tmp_path / 'work'
    proc = _sh(ROOT / 'tools/dist_train.sh', _trace_config(tmp_path), 2, '--work-dir', work,
               '--cfg-options', *demo_options(demo_data, epochs=2), env=_dist_env())
    out = proc.stdout + proc.stderr
    assert 'gloo' in out or 'world_size: 2' in out or 'World size: 2' in out
    # both ranks ran both epochs, on disjoint halves of the data
    traces = _traces(work)
    assert set(traces) == {(0, 1), (1, 1), (0, 2), (1, 2)}
    for epoch in (1, 2):
        r0, r1 = set(traces[(0, epoch)]), set(traces[(1, epoch)])
        assert r0 and r1 and not (r0 & r1)
        assert len(r0 | r1) == 16  # every train image once
    assert traces[(0, 1)] != traces[(0, 2)]  # reshuffled per epoch
    # only rank 0 writes checkpoints and logs
    assert (work / 'epoch_2.pth').exists() and sorted(work.glob('best_mIoU_*.pth'))
    logs = list(work.glob('*/*.log'))
    assert len(logs) == 1, logs
    record = json.loads(next(work.glob('*/run_record.json')).read_text())
    assert record['world_size'] == 2


def test_two_nodes_on_loopback(demo_data, tmp_path):
    work = tmp_path / 'work'
    port = subprocess.run([sys.executable, '-m', 'segkit.engine.launch', 'free-port'], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()
    common = [ROOT / 'tools/dist_train.sh', _trace_config(tmp_path), 1, '--work-dir', work,
              '--cfg-options', *demo_options(demo_data, epochs=1)]
    env = dict(os.environ, PYTHONUNBUFFERED='1', **_dist_env(NNODES=2, MASTER_ADDR='127.0.0.1',
                                                             PORT=port))
    nodes = [subprocess.Popen([str(a) for a in common], cwd=ROOT, env=dict(env, NODE_RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in (0, 1)]
    outs = [n.communicate(timeout=600)[0] for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    traces = _traces(work)
    assert set(traces) == {(0, 1), (1, 1)}
    assert not set(traces[(0, 1)]) & set(traces[(1, 1)])
    assert (work / 'epoch_1.pth').exists()


def test_two_concurrent_jobs_pick_different_ports(demo_data, tmp_path):
    procs = []
    for i in range(2):
        cmd = [ROOT / 'tools/dist_train.sh', DEMO_CONFIG, 1, '--work-dir', tmp_path / f'w{i}',
               '--cfg-options', *demo_options(demo_data, epochs=1)]
        procs.append(subprocess.Popen([str(a) for a in cmd], cwd=ROOT, env=dict(
            os.environ, OMP_NUM_THREADS='1'), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    assert not any('Address already in use' in o for o in outs)
    for i in range(2):
        assert (tmp_path / f'w{i}' / 'epoch_1.pth').exists()


@pytest.mark.parametrize('requested,visible,cvd,phrase', [
    (0, 0, None, 'GPUS must be >= 1'),
    (4, 0, None, None),  # CPU: 4 gloo processes
    (4, 0, '0,1', 'names 2 GPU(s) but torch sees none'),
    (4, 0, '-1', None),  # GPUs hidden on purpose: CPU processes
    (3, 2, '5,6', 'only 2 are visible (CUDA_VISIBLE_DEVICES=5,6)'),
    (2, 2, '5,6', None),
    (1, 8, None, None),
])
def test_gpu_request_check(requested, visible, cvd, phrase):
    """The one GPU-visibility check (launchers, preflight, doctor) over the cases."""
    from segkit.engine.launch import gpu_request_error
    err = gpu_request_error(requested, visible, cvd)
    assert (err is None) if phrase is None else (phrase in err), err


def test_launcher_refuses_bad_gpus_before_starting():
    proc = _sh(ROOT / 'tools/dist_train.sh', DEMO_CONFIG, 0, check=False)
    assert proc.returncode == 2 and 'GPUS must be >= 1' in proc.stderr
    proc = _sh(ROOT / 'tools/dist_train.sh', 'configs/nope.py', 2, check=False)
    assert proc.returncode == 2 and 'does not exist' in proc.stderr
    proc = _sh(ROOT / 'tools/dist_train.sh', DEMO_CONFIG, 4, check=False,
               env=dict(CUDA_VISIBLE_DEVICES='0,1'))
    assert proc.returncode == 2 and ('torch sees none' in proc.stderr
                                     or 'only 2 are visible' in proc.stderr)
    assert 'Traceback' not in proc.stderr


def test_dry_run_commands():
    cfg = 'configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512.py'
    single = _sh(ROOT / 'tools/dist_train.sh', cfg, 3, '--amp', 'bf16',
                 env=dict(DRY_RUN='1', PORT='29611')).stdout.strip()
    argv = shlex.split(single)
    assert argv[0].endswith('torchrun') or argv[:3][-1] == 'torch.distributed.run'
    for flag in ('--nnodes=1', '--node_rank=0', '--master_addr=127.0.0.1',
                 '--master_port=29611', '--nproc_per_node=3'):
        assert flag in argv
    assert argv[-5:] == [cfg, '--launcher', 'pytorch', '--amp', 'bf16']
    # one GPU on one node: a plain process, no torchrun / DDP
    one = shlex.split(_sh(ROOT / 'tools/dist_train.sh', cfg, 1, env=dict(DRY_RUN='1')).stdout)
    assert one[1:] == [str(ROOT / 'tools/train.py'), cfg] and 'python' in one[0]
    # a free port is chosen when PORT is unset
    free = shlex.split(_sh(ROOT / 'tools/dist_train.sh', cfg, 2, env=dict(DRY_RUN='1')).stdout)
    assert any(re.fullmatch(r'--master_port=\d+', a) for a in free)
    multi = shlex.split(_sh(ROOT / 'tools/dist_train.sh', cfg, 4, env=dict(
        DRY_RUN='1', NNODES='2', NODE_RANK='1', MASTER_ADDR='10.1.2.3', PORT='29700')).stdout)
    for flag in ('--nnodes=2', '--node_rank=1', '--master_addr=10.1.2.3',
                 '--master_port=29700', '--nproc_per_node=4'):
        assert flag in multi
    no_port = _sh(ROOT / 'tools/dist_train.sh', cfg, 4, env=dict(DRY_RUN='1', NNODES='2'),
                  check=False)
    assert no_port.returncode == 2 and 'PORT' in no_port.stderr
    test_cmd = shlex.split(_sh(ROOT / 'tools/dist_test.sh', cfg, __file__, 2, '--tta',
                               env=dict(DRY_RUN='1', PORT='29612')).stdout)
    assert '--master_port=29612' in test_cmd and test_cmd[-4:] == [
        __file__, '--launcher', 'pytorch', '--tta']
    slurm = _sh(ROOT / 'tools/slurm_train.sh', 'gpu', 'seg', cfg, 'work_dirs/x', '--amp',
                env=dict(DRY_RUN='1', GPUS='8', GPUS_PER_NODE='4', PORT='29800')).stdout
    assert slurm.startswith('MASTER_PORT=29800 srun ')
    argv = shlex.split(slurm.split(' ', 1)[1])
    for flag in ('-p', 'gpu', '--job-name=seg', '--gres=gpu:4', '--ntasks=8',
                 '--ntasks-per-node=4', '--launcher=slurm', '--resume', '--work-dir=work_dirs/x'):
        assert flag in argv
    slurm_test = _sh(ROOT / 'tools/slurm_test.sh', 'gpu', 'seg', cfg, 'ckpt.pth',
                     env=dict(DRY_RUN='1', GPUS='1', PORT='29801')).stdout
    assert '--ntasks=1' in slurm_test and 'ckpt.pth --launcher=slurm' in slurm_test


def test_test_tool_prints_per_class_iou_and_writes_json(tiny_run, demo_data, tmp_path):
    best = sorted(tiny_run.glob('best_mIoU_epoch_*.pth'))[-1]
    out_json = tmp_path / 'metrics.json'
    proc = run_py('tools/test.py', DEMO_CONFIG, best, '--work-dir', tmp_path / 'test',
                  '--metrics-json', out_json, '--out', tmp_path / 'pred',
                  '--cfg-options', f'test_dataloader.dataset.data_root={demo_data}',
                  'test_dataloader.num_workers=0')
    assert 'per-class results' in proc.stdout
    for name in ('background', 'disk', 'square', 'triangle', 'ring'):
        assert re.search(rf'│ {name}\s+│', proc.stdout), name
    payload = json.loads(out_json.read_text())
    assert set(payload['metrics']) >= {'aAcc', 'mIoU', 'mAcc'}
    assert len(payload['per_class']['IoU']) == 5
    confusion = payload['per_class']['confusion']
    assert sum(map(sum, confusion)) == sum(payload['per_class']['gt_pixels']) > 0
    assert len(list((tmp_path / 'pred').glob('*.png'))) == 8  # one prediction per val image


def test_infer_writes_one_png_per_input(tiny_run, demo_data, tmp_path):
    best = sorted(tiny_run.glob('best_mIoU_epoch_*.pth'))[-1]
    images = sorted((demo_data / 'img_dir' / 'val').glob('*.jpg'))[:3]
    folder = tmp_path / 'more'
    folder.mkdir()
    for img in sorted((demo_data / 'img_dir' / 'train').glob('*.jpg'))[:2]:
        shutil.copy(img, folder / f'x_{img.name}')
    out = tmp_path / 'out'
    proc = run_py('tools/infer.py', DEMO_CONFIG, best, *images, folder, '--out', out)
    masks = sorted((out / 'masks').glob('*.png'))
    assert len(masks) == 5 and len(list((out / 'overlays').glob('*.png'))) == 5
    import cv2
    import numpy as np
    mask = cv2.imread(str(masks[0]))[..., ::-1]
    palette = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200], [255, 225, 25]])
    assert all((palette == px).all(1).any() for px in mask.reshape(-1, 3)[::97])
    assert '5 mask(s)' in proc.stdout
    bad = run_py('tools/infer.py', DEMO_CONFIG, best, tmp_path / 'missing.jpg', '--out', out,
                 check=False)
    assert bad.returncode == 2 and bad.stderr.strip().startswith('error: input')


def test_auto_scale_lr_and_batch_warning(demo_data, tmp_path):
    """Batch 4 with a config named 1xb8: the launch warns, and --auto-scale-lr halves
    the LR (linear rule) and says so; mmengine's optimizer really runs at it."""
    work = tmp_path / 'work'
    proc = run_py('tools/train.py', DEMO_CONFIG, '--work-dir', work, '--auto-scale-lr',
                  '--cfg-options', *demo_options(demo_data, epochs=1))
    out = proc.stdout + proc.stderr
    assert 'the config is named for 1x8 = 8' in out
    assert ("--auto-scale-lr: batch 4 (this launch: 1 x 4) / 8 (the config name's 1x8) "
            '-> lr x 0.5: 0.006 -> 0.003') in out
    from segkit.safe_load import safe_load
    groups = safe_load(work / 'epoch_1.pth')['optimizer']['param_groups']
    assert groups[0]['initial_lr'] == pytest.approx(0.003)
