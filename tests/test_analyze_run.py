"""tools/analyze_run.py: reading a run (real and synthetic logs), the verdicts and
their numbers, the LR check, the next steps, plots and report.md."""
import json
import math
import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import DEMO_CONFIG, ROOT, demo_options, run_py
from segkit.analysis import load_run, read_run, write_report
from segkit.analysis.reading import window_of
from segkit.errors import SegkitError

PNG = b'\x89PNG\r\n\x1a\n'
SEGFORMER = 'configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512.py'
MASK2FORMER = 'configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512.py'
CLASSES = ['background', 'person', 'car', 'bottle', 'chair']


def _png_ok(path: Path) -> bool:
    import matplotlib.image as mpimg
    data = path.read_bytes()
    return data.startswith(PNG) and mpimg.imread(str(path)).ndim == 3


# ------------------------------------------------------------------ a real run


def _json_rows(sub: Path) -> list:
    f = sub / 'vis_data' / f'{sub.name}.json'
    if not f.is_file():
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


def _expected_from_logs(work: Path) -> dict:
    """Straight from the JSON logs: validations by epoch (a later sub-run wins),
    the training sub-runs found."""
    miou, subruns = {}, 0
    for sub in sorted(p for p in work.iterdir() if p.is_dir() and p.name[:8].isdigit()):
        rows = _json_rows(sub)
        if any('loss' in r for r in rows):
            subruns += 1
        for r in rows:
            if 'mIoU' in r:
                miou[r['step']] = r['mIoU']
    epochs = sorted(miou)
    return {'epochs': epochs, 'miou': [miou[e] for e in epochs], 'subruns': subruns}


@pytest.fixture(scope='module')
def real_run(demo_data, tmp_path_factory):
    """The demo config, 2 epochs (4 it/epoch, train lines every iteration), resumed
    to 3 epochs, and the best checkpoint tested (test_metrics.json)."""
    work = tmp_path_factory.mktemp('analyze') / 'work'
    run_py('tools/train.py', DEMO_CONFIG, '--work-dir', work,
           '--cfg-options', *demo_options(demo_data, epochs=2))
    run_py('tools/train.py', DEMO_CONFIG, '--work-dir', work, '--resume',
           '--cfg-options', *demo_options(demo_data, epochs=3))
    best = sorted(work.glob('best_mIoU_epoch_*.pth'))[-1]
    run_py('tools/test.py', DEMO_CONFIG, best, '--work-dir', work, '--cfg-options',
           f'test_dataloader.dataset.data_root={demo_data}', 'test_dataloader.num_workers=0')
    return work


def run_tool_here(monkeypatch, *args):
    """tools/analyze_run.py ARGS in this process (a subprocess spends ~10 s importing
    torch on a busy 2-core machine); returns its exit code."""
    monkeypatch.setattr(sys, 'argv', ['analyze_run.py', *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / 'tools' / 'analyze_run.py'), run_name='__main__')
    return exc.value.code


def test_real_run_numbers_equal_the_logs(real_run):
    exp = _expected_from_logs(real_run)
    run = load_run(real_run)
    r = read_run(run, last_k=2)
    assert exp['subruns'] == 2 and r.n_subruns == 2 and not run.empty
    assert run.subruns[1].resumed_at == (2, 8)
    assert [v.epoch for v in run.val] == exp['epochs'] == [1, 2, 3]
    assert r.n_val == 3
    best_i = int(np.argmax(exp['miou']))
    assert r.best_miou == pytest.approx(exp['miou'][best_i])
    assert r.best_epoch == exp['epochs'][best_i]
    idx = window_of(exp['epochs'], 2)
    assert r.gain == pytest.approx(exp['miou'][idx[-1]] - exp['miou'][idx[0]])
    slope = np.polyfit([exp['epochs'][i] for i in idx], [exp['miou'][i] for i in idx], 1)[0]
    assert r.slope == pytest.approx(slope, abs=1e-9)
    # the train lines of both sub-runs, every iteration once
    assert [p.iter for p in run.train] == list(range(1, 13))
    # the test metrics were found: per-class values and pixel shares from them
    assert run.test is not None and r.class_source == 'test'
    px = run.test.gt_pixels
    assert [c.share for c in r.classes] == pytest.approx([100 * p / sum(px) for p in px])


def test_real_run_lr_rebuilt_from_config_matches_the_log(real_run):
    """Warmup (iteration by iteration) and poly, rebuilt with mmengine's schedulers
    from each sub-run's config.py, equal the logged LR; --cfg-options
    train_cfg.max_epochs=3 left the schedule ending at epoch 40: flagged."""
    r = read_run(load_run(real_run), last_k=2)
    assert len(r.lr_checks) == 2
    for chk in r.lr_checks:
        assert chk.matches and chk.max_error < 1e-6, chk
    assert r.lr_checks[0].logged[0] < 0.01 * r.lr_checks[0].peak  # warmup start
    assert r.schedule.max_epochs == 3 and r.schedule.end_epoch == 40
    assert any('ends at epoch 40 but training stops at epoch 3' in s for s in r.findings)
    cmds = [c for s in r.next_steps for c in s.commands]
    assert any('--max-epochs 3' in c for c in cmds)
    # batch 4 x 1 process against the name's 1xb8
    assert r.batch == (4, 8, '1x8')
    assert any('--auto-scale-lr' in c for c in cmds)


def test_real_run_report_and_plots(real_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / 'report'
    assert run_tool_here(monkeypatch, real_run, '--last-k', '2', '--out', out) == 0
    stdout = capsys.readouterr().out
    md = (out / 'report.md').read_text()
    for name in ('loss_lr', 'val_metrics', 'per_class_iou', 'confusion'):
        png = out / f'{name}.png'
        assert png.is_file() and _png_ok(png), name
        assert f']({name}.png)' in md
    assert 'best mIoU' in md and 'Next steps' in md
    assert 'report.md' in stdout and 'next steps' in stdout
    assert 'LR MISMATCH' in stdout  # the schedule ends at epoch 40, training at 3


def test_tensorboard_fallback_reads_the_same(real_run, tmp_path):
    """Without the JSON logs, the event files give the same curves."""
    work = tmp_path / 'tb'
    shutil.copytree(real_run, work, ignore=shutil.ignore_patterns('*.pth', 'report'))
    for f in work.glob('*/vis_data/*.json'):
        f.unlink()
    a, b = load_run(real_run), load_run(work)
    assert [s.source for s in b.subruns] == ['tensorboard', 'tensorboard']
    assert [v.epoch for v in b.val] == [v.epoch for v in a.val]
    assert [v.miou for v in b.val] == pytest.approx([v.miou for v in a.val])
    assert [p.iter for p in b.train] == [p.iter for p in a.train]
    assert [p.lr for p in b.train] == pytest.approx([p.lr for p in a.train])
    assert b.val[-1].iou == pytest.approx(a.val[-1].iou)


# ------------------------------------------------------------------ synthetic runs

CONFIG_PY = '''\
num_classes = 5
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr={lr}))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, begin=0, end={end},
                        milestones={milestones}, gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs={max_epochs}, val_interval=1)
train_dataloader = dict(batch_size={batch}, dataset=dict(type='BaseSegDataset',
                        metainfo=dict(classes={classes})))
'''


def write_subrun(work: Path, ts: str, *, epochs: range, miou=None, loss=None, lr=None,
                 per_class=None, iters_per_epoch: int = 10, max_epochs: int = 20,
                 config: str = SEGFORMER, batch: int = 6, world: int = 3,
                 milestones=(), end=None, cfg_lr: float = 0.01, resumed_from=None,
                 log_interval: int = 5) -> Path:
    """One <timestamp>/ sub-run in the format tools/train.py writes."""
    sub = work / ts
    (sub / 'vis_data').mkdir(parents=True)
    lines = []
    L = iters_per_epoch
    for e in epochs:
        for it in range((e - 1) * L + log_interval, e * L + 1, log_interval):
            value = lr(e, it) if lr else cfg_lr * 0.1 ** sum(m <= e - 1 for m in milestones)
            lines.append({'base_lr': value, 'lr': value, 'data_time': 0.01,
                          'loss': loss(e, it) if loss else 0.5, 'decode.loss_ce': 0.5,
                          'decode.acc_seg': 80.0, 'time': 0.5, 'epoch': e, 'iter': it,
                          'step': it})
        if miou is not None:
            m = miou(e)
            lines.append({'aAcc': 90.0, 'mIoU': m, 'mAcc': m + 5, 'data_time': 0.01,
                          'time': 0.2, 'step': e})
            if per_class is not None:
                row = {}
                for c, v in zip(CLASSES, per_class(e)):
                    row[f'IoU_per_class/{c}'] = v
                    row[f'Acc_per_class/{c}'] = min(100.0, v + 5)
                lines.append({**row, 'step': e})
    (sub / 'vis_data' / f'{ts}.json').write_text(''.join(json.dumps(x) + '\n' for x in lines))
    (sub / 'config.py').write_text(CONFIG_PY.format(
        lr=cfg_lr, end=end or max_epochs, milestones=list(milestones),
        max_epochs=max_epochs, batch=batch, classes=tuple(CLASSES)))
    first = epochs[0]
    log = [f'2026/01/01 10:{first:02d}:00 - mmengine - INFO - start']
    if resumed_from:
        log.append(f'2026/01/01 10:{first:02d}:01 - mmengine - INFO - resumed epoch: '
                   f'{first - 1}, iter: {(first - 1) * L}')
    log.append(f'2026/01/01 10:{first:02d}:30 - mmengine - INFO - Epoch(train) [{first}]'
               f'[{L}/{L}]  base_lr: 1e-2 lr: 1e-2  loss: 0.5')
    log.append(f'2026/01/01 11:{first:02d}:00 - mmengine - INFO - done')
    (sub / f'{ts}.log').write_text('\n'.join(log) + '\n')
    (sub / 'run_record.json').write_text(json.dumps({
        'command': ['python', 'tools/train.py', config, '--work-dir', str(work)],
        'cwd': str(Path(__file__).resolve().parents[1]), 'world_size': world,
        'mode': 'train', 'resumed_from': resumed_from, 'config': 'config.py'}))
    return sub


def write_test_metrics(work: Path, ts: str, iou: list, gt_pixels: list, confusion: list):
    sub = work / ts
    (sub / 'vis_data').mkdir(parents=True)
    (sub / 'test_metrics.json').write_text(json.dumps({
        'config': SEGFORMER, 'checkpoint': str(work / 'best_mIoU_epoch_12.pth'),
        'metrics': {'aAcc': 90.0, 'mIoU': float(np.mean(iou)), 'mAcc': 60.0},
        'per_class': {'classes': CLASSES, 'IoU': iou, 'Acc': iou, 'gt_pixels': gt_pixels,
                      'confusion': confusion}}))


def _plateau_miou(e):
    return 40 + 20 * (1 - math.exp(-e / 3)) + 0.05 * ((-1) ** e)


def _expected_window(epochs, miou, k):
    idx = [i for i, e in enumerate(epochs) if e >= epochs[-1] - k]
    xs, ys = [epochs[i] for i in idx], [miou[i] for i in idx]
    return ys[-1] - ys[0], np.polyfit(xs, ys, 1)[0]


def _commands(r) -> list:
    return [c for s in r.next_steps for c in s.commands]


@pytest.fixture
def plateau_run(tmp_path):
    """20 epochs, mIoU flat over the last 5, train loss flat; bottle and chair (rare)
    weakest; chair mostly predicted as background in the confusion matrix."""
    work = tmp_path / 'plateau'
    write_subrun(work, '20260101_100000', epochs=range(1, 21), miou=_plateau_miou,
                 loss=lambda e, it: 0.3 + 0.7 * math.exp(-e / 3),
                 per_class=lambda e: [95, 70, 60, 12, 8])
    conf = [[9000, 20, 20, 10, 10], [50, 1900, 30, 10, 10], [40, 30, 900, 10, 20],
            [60, 10, 10, 40, 0], [70, 5, 5, 0, 20]]
    write_test_metrics(work, '20260101_120000', [95.0, 70.0, 60.0, 12.0, 8.0],
                       [sum(r) for r in conf], conf)
    return work


def test_plateau_is_read_with_its_numbers(plateau_run):
    r = read_run(load_run(plateau_run), last_k=5)
    epochs = list(range(1, 21))
    miou = [_plateau_miou(e) for e in epochs]
    gain, slope = _expected_window(epochs, miou, 5)
    assert r.verdict == 'plateau' and not r.overfitting and not r.loss_falling
    assert r.n_val == 20 and r.window == list(range(15, 21))
    assert r.gain == pytest.approx(gain) and r.slope == pytest.approx(slope)
    assert r.best_miou == pytest.approx(max(miou)) and r.best_epoch == 1 + int(np.argmax(miou))
    assert [c.name for c in r.weakest] == ['chair']
    assert r.weak_rare and r.imbalance
    top = r.confusions[0]
    assert (top.truth, top.predicted, top.pixels) == ('chair', 'background', 70)
    assert top.fraction == pytest.approx(70 / 100)
    assert all(chk.matches for chk in r.lr_checks)
    cmds = _commands(r)
    cw = SEGFORMER.replace('.py', '_cw-ce.py')
    assert f'python tools/class_weights.py {cw} --method inverse' in cmds
    assert any(c.startswith(f'python tools/train.py {cw} ') for c in cmds)
    for v in ('focal', 'lovasz', 'ce-lovasz'):
        assert any(SEGFORMER.replace('.py', f'_{v}.py') in c for c in cmds), v
    assert not any('strong-aug' in c or '--resume' in c for c in cmds)
    # the plateau is in the words, with its numbers
    text = ' '.join(r.findings)
    assert 'Converged (plateau)' in text and f'{gain:+.2f}' in text



def test_mask2former_plateau_gets_class_weights_not_pixel_losses(tmp_path):
    """Mask2Former classifies queries: its advice is the cw-ce variant (loss_cls class
    weights), never a SegFormer focal / Lovasz decode-head loss to copy."""
    work = tmp_path / 'm2f'
    write_subrun(work, '20260101_100000', epochs=range(1, 21), miou=_plateau_miou,
                 loss=lambda e, it: 0.3 + 0.7 * math.exp(-e / 3),
                 per_class=lambda e: [95, 70, 60, 12, 8], config=MASK2FORMER)
    conf = [[9000, 20, 20, 10, 10], [50, 1900, 30, 10, 10], [40, 30, 900, 10, 20],
            [60, 10, 10, 40, 0], [70, 5, 5, 0, 20]]
    write_test_metrics(work, '20260101_120000', [95.0, 70.0, 60.0, 12.0, 8.0],
                       [sum(r) for r in conf], conf)
    r = read_run(load_run(work), last_k=5)
    assert r.verdict == 'plateau' and r.imbalance
    cmds = _commands(r)
    cw = MASK2FORMER.replace('.py', '_cw-ce.py')
    assert f'python tools/class_weights.py {cw} --method inverse' in cmds
    words = ' '.join(s.why for s in r.next_steps)
    assert 'segformer' not in words and not any('segformer' in c for c in cmds)

def test_rising_curve_says_train_longer(tmp_path):
    work = tmp_path / 'rising'
    write_subrun(work, '20260101_100000', epochs=range(1, 11), miou=lambda e: 20 + 2 * e,
                 loss=lambda e, it: 1.0 - 0.05 * e, max_epochs=10)
    r = read_run(load_run(work), last_k=5)
    assert r.verdict == 'rising'
    assert r.gain == pytest.approx(10.0) and r.slope == pytest.approx(2.0)
    assert r.best_epoch == 10 and r.best_miou == pytest.approx(40.0)
    assert not r.overfitting
    cmds = _commands(r)
    assert f'python tools/train.py {SEGFORMER} --work-dir {work} --resume --max-epochs 15' \
        in cmds
    assert not any('cw-ce' in c or 'strong-aug' in c for c in cmds)


def test_overfit_is_flagged_and_strong_aug_named(tmp_path):
    work = tmp_path / 'overfit'
    write_subrun(work, '20260101_100000', epochs=range(1, 21),
                 miou=lambda e: 30 + 2.5 * e if e <= 8 else 50 - 0.4 * (e - 8),
                 loss=lambda e, it: 1.0 - 0.045 * e,
                 per_class=lambda e: [95, 60, 55, 50, 45])
    r = read_run(load_run(work), last_k=5)
    assert r.best_epoch == 8 and r.best_miou == pytest.approx(50.0)
    assert r.verdict == 'falling' and r.slope == pytest.approx(-0.4)
    assert r.loss_falling and r.best_far_before_end and r.overfitting
    assert r.epochs_since_best == 12
    assert r.class_source == 'val (epoch 8)' and not r.imbalance  # no pixel counts
    cmds = _commands(r)
    assert any(SEGFORMER.replace('.py', '_strong-aug.py') in c for c in cmds)
    assert not any('class_weights' in c for c in cmds)
    # no test metrics: the next steps say how to get them
    assert any(c.startswith(f'python tools/test.py {SEGFORMER} ') for c in cmds)


def test_lr_mismatch_is_flagged(tmp_path):
    """config.py drops the LR x0.1 at epoch 5; the log never drops it."""
    work = tmp_path / 'lr'
    write_subrun(work, '20260101_100000', epochs=range(1, 11), miou=_plateau_miou,
                 max_epochs=10, milestones=(5,), lr=lambda e, it: 0.01)
    r = read_run(load_run(work), last_k=5)
    assert r.lr_mismatch
    chk = r.lr_checks[0]
    assert chk.first_bad == 55  # the first logged iteration of epoch 6 (10 it per epoch)
    assert chk.max_error == pytest.approx(0.9)
    assert any('LR MISMATCH' in s and 'iteration 55' in s for s in r.findings)
    assert any(s.key == 'lr' for s in r.next_steps)


def test_lr_stuck_at_its_minimum_and_schedule_end_before_training_end(tmp_path):
    """The schedule ends at epoch 6 of 10: the LR sits at its floor from epoch 6 on
    (x0.1 after epochs 3 and 5)."""
    work = tmp_path / 'stuck'
    write_subrun(work, '20260101_100000', epochs=range(1, 11), miou=_plateau_miou,
                 max_epochs=10, end=6, milestones=(3, 5))
    r = read_run(load_run(work), last_k=5)
    assert all(c.matches for c in r.lr_checks)
    assert r.schedule.end_epoch == 6 and r.schedule.max_epochs == 10
    n, eps, low = r.lr_stuck  # from the first logged step at the floor (iteration 55)
    assert low == pytest.approx(1e-4) and n == 100 - 55 + 1 and eps == pytest.approx(4.6)
    text = ' '.join(r.findings)
    assert 'ends at epoch 6 but training runs to epoch 10' in text
    assert 'sat at its minimum' in text


def test_resume_merge_later_subrun_wins(tmp_path):
    """The first sub-run logged epochs 1-6; the second resumed from epoch 4 and
    logged 5-8 with other values: 5 and 6 come from the second."""
    work = tmp_path / 'resumed'
    write_subrun(work, '20260101_100000', epochs=range(1, 7), miou=lambda e: 10 + e,
                 max_epochs=8)
    write_subrun(work, '20260101_110000', epochs=range(5, 9), miou=lambda e: 100 + e,
                 max_epochs=8, resumed_from=str(work / 'epoch_4.pth'))
    (work / '20260101_105000').mkdir()  # a start that logged nothing...
    (work / '20260101_105000' / 'run_record.json').write_text('{"mode": "train"}')
    run = load_run(work)
    assert len(run.subruns) == 2 and len(run.empty) == 1
    assert [(v.epoch, v.miou) for v in run.val] == [(1, 11), (2, 12), (3, 13), (4, 14),
                                                    (5, 105), (6, 106), (7, 107), (8, 108)]
    assert [v.subrun for v in run.val] == [0, 0, 0, 0, 1, 1, 1, 1]
    its = [p.iter for p in run.train]
    assert its == sorted(set(its)) and its[-1] == 80
    assert all(p.subrun == 1 for p in run.train if p.iter > 40)
    r = read_run(run, last_k=3)
    assert r.n_subruns == 2 and r.n_empty_subruns == 1 and r.best_epoch == 8
    assert 'resumed at epoch 4' in r.findings[0] and '1 start(s) logged nothing' in r.findings[0]


def test_run_without_per_class_lines_or_validation(tmp_path):
    plain = tmp_path / 'plain'  # plain IoUMetric: summary lines only
    write_subrun(plain, '20260101_100000', epochs=range(1, 9), miou=lambda e: 30 + e)
    r = read_run(load_run(plain), last_k=5)
    assert r.n_val == 8 and r.classes == [] and r.class_source is None
    rep = write_report(load_run(plain), r, tmp_path / 'out_plain')
    assert set(rep.plots) == {'loss_lr', 'val_metrics'}
    assert 'No per-class values' in rep.markdown.read_text()

    never = tmp_path / 'never'  # train lines only
    write_subrun(never, '20260101_100000', epochs=range(1, 4), miou=None)
    run = load_run(never)
    r = read_run(run)
    assert r.verdict == 'no-validation' and r.n_val == 0 and r.best_miou is None
    assert 'never validated' in r.findings[1]
    assert any('val_interval' in c for c in _commands(r))
    rep = write_report(run, r, tmp_path / 'out_never')
    assert set(rep.plots) == {'loss_lr'}
    assert 'No validation was logged' in rep.markdown.read_text()


def test_compare_runs(plateau_run, tmp_path):
    other = tmp_path / 'rising'
    write_subrun(other, '20260101_100000', epochs=range(1, 11), miou=lambda e: 20 + 2 * e)
    run, o = load_run(plateau_run), load_run(other)
    rep = write_report(run, read_run(run), tmp_path / 'cmp',
                       compare=[(o, read_run(o))])
    md = rep.markdown.read_text()
    assert '## Compared runs' in md and '| rising | 40.00 | 10 | 10 | 10 |' in md
    assert _png_ok(rep.plots['compare_miou']) and '](compare_miou.png)' in md


def test_bad_input_is_one_line_error(tmp_path, monkeypatch, capsys):
    with pytest.raises(SegkitError, match='is not a directory'):
        load_run(tmp_path / 'missing')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SegkitError, match='no training logs'):
        load_run(tmp_path / 'empty')
    assert run_tool_here(monkeypatch, tmp_path / 'empty') == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: no training logs in') and len(err.splitlines()) == 1


def test_config_variants_of_this_repository():
    from segkit.analysis.advice import base_stem, bigger_encoders, variant, variant_or_example
    assert base_stem('x_3xb6-200e_voc12aug-512x512_ce-lovasz') == 'x_3xb6-200e_voc12aug-512x512'
    cosine = SEGFORMER.replace('.py', '_cosine.py')
    assert variant(cosine, 'strong-aug') == SEGFORMER.replace('.py', '_strong-aug.py')
    assert bigger_encoders(SEGFORMER) == [
        'configs/segformer/segformer_mit-b4_3xb6-200e_voc12aug-512x512.py']
    path, ours = variant_or_example(DEMO_CONFIG, 'focal')
    assert not ours and path.startswith('configs/segformer/') and Path(path).is_file()
    assert all((ROOT / p).is_file()
               for p in (variant(SEGFORMER, v) for v in ('cw-ce', 'focal', 'lovasz')))
