"""tools/sweep.py: variants in their own work dirs, skip / resume, one comparison."""
import json

import pytest

from conftest import DEMO_CONFIG, demo_options, run_py


def _last_val(work_dir):
    """mIoU / mAcc / per-class IoU of the last validation, straight from the JSON logs
    (the newest sub-run that validated wins: a resume repeats epochs)."""
    by_step = {}
    for log in sorted(work_dir.glob('*/vis_data/scalars.json')):
        fresh = {}
        for line in log.read_text().splitlines():
            row = json.loads(line)
            if 'iter' not in row and 'step' in row:  # validation + per-class lines
                fresh.setdefault(row['step'], {}).update(row)
        by_step.update(fresh)
    return by_step[max(by_step)]


@pytest.mark.slow
def test_sweep_skip_resume_and_comparison(demo_data, tmp_path):
    opts = [o for o in demo_options(demo_data, batch=4) if 'max_epochs' not in o]
    args = ['tools/sweep.py', DEMO_CONFIG, '--variant', 'lr2e-3:optim_wrapper.optimizer.lr=2e-3',
            '--epochs', '2', '--name', 't', '--root', tmp_path, '--cfg-options', *opts]
    first = run_py(*args, env={'OMP_NUM_THREADS': '1'})
    sweep = tmp_path / 'sweep_t'
    for name in ('base', 'lr2e-3'):  # each in its own work dir, to the end
        assert (sweep / name / 'epoch_2.pth').is_file()
        assert json.loads((sweep / name / 'sweep_done.json').read_text())['epochs'] == 2
    assert first.stdout.count('done in') == 2
    cfg = next((sweep / 'lr2e-3').glob('*/config.py')).read_text()
    assert 'lr=0.002' in cfg.replace(' ', '')

    # interrupted after epoch 1: no done marker, the last checkpoint epoch_1
    lr_dir = sweep / 'lr2e-3'
    (lr_dir / 'sweep_done.json').unlink()
    (lr_dir / 'epoch_2.pth').unlink()
    (lr_dir / 'last_checkpoint').write_text(str(lr_dir / 'epoch_1.pth'))
    second = run_py(*args, env={'OMP_NUM_THREADS': '1'})
    assert 'base: finished (done marker sweep_done.json), skipped' in second.stdout
    assert 'lr2e-3: resuming' in second.stdout and second.stdout.count('done in') == 1
    assert (lr_dir / 'epoch_2.pth').is_file() and (lr_dir / 'sweep_done.json').is_file()
    log = (lr_dir / 'sweep_train.log').read_text()
    assert '--resume' in log and 'resumed epoch: 1' in log

    # the comparison's numbers are the logs' numbers
    md = (sweep / 'compare' / 'compare.md').read_text()
    base, var = _last_val(sweep / 'base'), _last_val(lr_dir)
    assert base['step'] == var['step'] == 2
    assert f"| base | 2 | {base['mIoU']:.2f} |  |  | {base['mAcc']:.2f} |" in md
    assert (f"| lr2e-3 | 2 | {var['mIoU']:.2f} | {var['mIoU'] - base['mIoU']:+.2f} |"
            in md)
    weakest = min((k for k in base if k.startswith('IoU_per_class/')), key=base.get)
    cls = weakest.split('/', 1)[1]
    assert f"| {cls} | {base[weakest]:.2f} | {var[weakest] - base[weakest]:+.2f}" in md
    assert '### Verdict' in md and 'Pick:' in md and 'Noise:' in md
    assert (sweep / 'compare' / 'compare_miou.png').stat().st_size > 10_000
    tb = sweep / 'compare' / 'tensorboard'
    assert sorted(p.name for p in tb.iterdir()) == ['base', 'lr2e-3']
    assert f'tensorboard --logdir {tb}' in second.stdout


def test_bad_variants_are_one_line_errors(tmp_path):
    proc = run_py('tools/sweep.py', DEMO_CONFIG, '--variants', '_focal', check=False)
    assert proc.returncode == 2 and proc.stderr.startswith('error: variant _focal: no ')
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_py('tools/sweep.py', DEMO_CONFIG, '--variant', 'oops', check=False)
    assert proc.returncode == 2 and 'NAME:key=value' in proc.stderr


def test_gpu_slots():
    import torch

    from segkit.engine.sweep import gpu_slots
    from segkit.errors import SegkitError
    assert gpu_slots(None, 2) == [None]
    with pytest.raises(SegkitError, match='does not divide'):
        gpu_slots('0,1,2', 2)
    if torch.cuda.device_count() >= 2:
        assert gpu_slots('0,1', 1) == ['0', '1']
    elif not torch.cuda.is_available():
        with pytest.raises(SegkitError, match='no CUDA GPU'):
            gpu_slots('0,1', 1)
