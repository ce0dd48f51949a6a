"""tools/lr_finder.py: the LR range test on the demo (real model, data, optimizer)."""
import json
import runpy
import sys

import pytest

from conftest import DEMO_CONFIG, ROOT, demo_options


def run_tool_here(monkeypatch, *args):
    """tools/lr_finder.py ARGS in this process (saves a torch import); exit code."""
    monkeypatch.setattr(sys, 'argv', ['lr_finder.py', *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / 'tools' / 'lr_finder.py'), run_name='__main__')
    return exc.value.code


@pytest.fixture(scope='module')
def sweep_data(tmp_path_factory):
    """240 train images: the 16 of demo_data are memorised within the sweep, which
    moves the loss's fall to a lower LR than the demo's own 480 images give."""
    from segkit.data.shapes import generate
    root = tmp_path_factory.mktemp('lr_data')
    generate(root, seed=0, sizes={'train': 240, 'val': 8})
    return root


def test_range_test_on_the_demo(sweep_data, tmp_path, monkeypatch, capsys):
    """Falls, then diverges; the suggestion lies in the swept range within ~3x of the
    demo's tuned LR (same batch, 8); patch embeddings at 0.1x keep their ratio; no
    checkpoint, no work dir."""
    from mmengine.config import Config
    tuned = Config.fromfile(str(ROOT / DEMO_CONFIG)).lr
    work_dir, out = tmp_path / 'work', tmp_path / 'out'
    monkeypatch.chdir(tmp_path)  # a default work_dirs/ would land here
    code = run_tool_here(
        monkeypatch, ROOT / DEMO_CONFIG, '--iters', 120, '--start-lr', tuned / 100,
        '--end-lr', tuned * 1e4, '--out', out, '--cfg-options',
        *demo_options(sweep_data, batch=8), f'work_dir={work_dir}',
        'optim_wrapper.paramwise_cfg.custom_keys.projection.lr_mult=0.1')
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    curve = json.loads((out / 'lr_finder.json').read_text())
    sm = curve['smoothed']
    i_min = sm.index(min(sm))
    assert min(sm) < 0.8 * sm[0] and 0 < i_min < len(sm) - 1  # falls
    assert curve['stopped'].startswith('diverged') and sm[-1] > 2 * min(sm)  # diverges
    lr = curve['suggested_lr']
    assert curve['lr'][0] <= lr <= curve['lr'][-1]
    assert tuned / 3 <= lr <= tuned * 3, (lr, tuned)  # batch 8: the config's own
    assert f'suggested lr: {lr:.3g}' in stdout
    assert f'--cfg-options optim_wrapper.optimizer.lr={lr:.3g}' in stdout
    assert f'lr = {lr:.3g}' in stdout and 'num_gpus 1 x samples_per_gpu 8 = 8' in stdout
    # the groups, read back from the optimizer after the sweep: projections 0.1x, rest 1x
    mults = sorted({round(m, 6) for m in curve['lr_mult']})
    assert mults == [0.1, 1.0]
    last = curve['lr'][-1]
    assert curve['group_lr'] == pytest.approx([m * last for m in curve['lr_mult']])
    assert (out / 'lr_finder.png').stat().st_size > 10_000
    assert not work_dir.exists() and not (tmp_path / 'work_dirs').exists()
    assert not list(tmp_path.rglob('*.pth'))


@pytest.mark.slow
def test_two_processes_average_the_loss(demo_data, tmp_path):
    """torchrun, 2 CPU processes (gloo): one curve, written by rank 0."""
    import subprocess
    out = tmp_path / 'out'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_port', str(__import__('segkit.engine.launch', fromlist=['x'])
                                .free_port()),
           str(ROOT / 'tools' / 'lr_finder.py'), str(ROOT / DEMO_CONFIG), '--launcher',
           'pytorch', '--iters', '12', '--out', str(out), '--cfg-options',
           *demo_options(demo_data, batch=2)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**__import__('os').environ, 'OMP_NUM_THREADS': '1'})
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    curve = json.loads((out / 'lr_finder.json').read_text())
    assert curve['world_size'] == 2 and len(curve['loss']) == 12
    assert 'total batch 4 = 2 x 2' in proc.stdout  # 2 processes x 2 images
    assert proc.stdout.count('[lr_finder] 12 steps') == 1  # rank 0 speaks
