"""The built-in demo: a deterministic, non-trivial dataset, and `make demo`'s flow
(train with validation each epoch -> best checkpoint -> test -> report)."""
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import demo_options, run_py
from segkit.data.shapes import CLASSES, generate


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(root.rglob('*')):
        if f.is_file() and f.name != 'meta.json':
            h.update(f.relative_to(root).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope='module')
def demo_sets(tmp_path_factory):
    sizes = {'train': 40, 'val': 10}
    a = tmp_path_factory.mktemp('a')
    b = tmp_path_factory.mktemp('b')
    c = tmp_path_factory.mktemp('c')
    generate(a, seed=0, sizes=sizes)
    generate(b, seed=0, sizes=sizes)
    generate(c, seed=1, sizes=sizes)
    return a, b, c


def test_generator_is_deterministic_for_a_seed(demo_sets):
    a, b, c = demo_sets
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_layout_and_label_values(demo_sets):
    root = demo_sets[0]
    for split, n in (('train', 40), ('val', 10)):
        imgs = sorted((root / 'img_dir' / split).glob('*.jpg'))
        anns = sorted((root / 'ann_dir' / split).glob('*.png'))
        assert len(imgs) == len(anns) == n
        assert [p.stem for p in imgs] == [p.stem for p in anns]
        for img_path, ann_path in zip(imgs[:10], anns[:10]):
            img = cv2.imread(str(img_path), cv2.IMREAD_UNCHANGED)
            ann = cv2.imread(str(ann_path), cv2.IMREAD_UNCHANGED)
            assert img.shape == (64, 64, 3) and ann.shape == (64, 64)
            assert ann.dtype == np.uint8 and set(np.unique(ann)) <= set(range(len(CLASSES)))


def test_class_frequencies_as_designed(tmp_path):
    """The full-size train split: background dominates, ring is rare, every class
    appears, several shapes per image, colour does not give the class."""
    meta = generate(tmp_path, seed=0)
    px = dict(zip(CLASSES, meta['stats']['train']['pixel_fraction']))
    imgs = dict(zip(CLASSES, meta['stats']['train']['image_fraction']))
    assert 0.6 < px['background'] < 0.85
    assert 0.005 < px['ring'] < 0.03 and px['ring'] < min(px['disk'], px['square'],
                                                            px['triangle']) / 3
    assert 0.1 < imgs['ring'] < 0.3 and min(imgs['disk'], imgs['square']) > 0.5
    # recomputed from the files, the meta is right
    counts = np.zeros(len(CLASSES))
    per_class_colour = {k: [] for k in range(1, len(CLASSES))}
    for ann_path in sorted((tmp_path / 'ann_dir' / 'train').glob('*.png')):
        ann = cv2.imread(str(ann_path), cv2.IMREAD_UNCHANGED)
        counts += np.bincount(ann.ravel(), minlength=len(CLASSES))
        img = cv2.imread(str(tmp_path / 'img_dir' / 'train' / f'{ann_path.stem}.jpg'))
        for k in per_class_colour:
            if (ann == k).sum() > 30:
                per_class_colour[k].append(img[ann == k].mean(0))
    assert np.allclose(counts / counts.sum(), meta['stats']['train']['pixel_fraction'],
                       atol=1e-4)
    # mean colours of the four shape classes overlap: colour alone cannot classify
    means = np.array([np.mean(v, 0) for v in per_class_colour.values()])
    spreads = np.array([np.std(v, 0) for v in per_class_colour.values()])
    assert (np.ptp(means, 0) < spreads.mean(0)).all()


@pytest.mark.slow
def test_make_demo_flow(tmp_path, capsys):
    """What `make demo` runs, shortened: 1 epoch on a small copy of the data."""
    from segkit.demo import DEMOS, run_demo
    code = run_demo('segformer', epochs=1, out_root=tmp_path,
                    data_sizes={'train': 32, 'val': 8})
    out = capsys.readouterr().out
    work = tmp_path / 'work_dirs' / 'segformer_mit-tiny_1xb8-40e_demo-64x64'
    best = sorted(work.glob('best_mIoU_epoch_*.pth'))
    assert best, out[-3000:]
    metrics = json.loads((work / 'demo_test_metrics.json').read_text())
    miou = metrics['metrics']['mIoU']
    assert code == (0 if miou >= DEMOS['segformer']['bar'] else 1)
    assert f'best checkpoint:  {best[-1]}' in out
    assert 'open TensorBoard: scripts/tensorboard.sh' in out
    # TensorBoard got the curves, in the folder the demo prints (training's, not test's)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    shown = Path(out.split('TensorBoard logs: ')[1].split()[0])
    events = sorted(shown.glob('events.out.tfevents.*'))
    assert events
    tags = set()
    for ev in events:
        acc = EventAccumulator(str(ev))
        acc.Reload()
        tags |= set(acc.Tags()['scalars'])
    assert {'train/loss', 'train/lr', 'val/mIoU'} <= tags
    assert {f'val_IoU/{c}' for c in ('background', 'disk')} <= tags
    # the run's JSON log holds the per-class values of every validation
    lines = [json.loads(x) for x in next(work.glob('*/vis_data/2*.json')).read_text().split('\n')
             if x.strip()]
    assert any('IoU_per_class/disk' in x for x in lines)
    # a second demo never overwrites the first one's results
    from segkit.demo import fresh_work_dir
    assert fresh_work_dir(work.name, tmp_path) != work


@pytest.mark.parametrize('config', ['configs/demo/segformer_mit-tiny_1xb8-40e_demo-64x64.py',
                                    'configs/demo/mask2former_mit-tiny_1xb8-20e_demo-64x64.py'],
                         ids=['segformer', 'mask2former'])
def test_preflight_passes_for_both_demos(config, demo_data, tmp_path):
    """tools/train.py's checks (model shapes for the weights check included) in a fresh
    process, as the demo and every launch run them: no default scope set yet."""
    proc = run_py('tools/train.py', config, '--work-dir', tmp_path / 'w', '--preflight-only',
                  '--cfg-options', *demo_options(demo_data))
    assert 'preflight passed' in proc.stdout + proc.stderr
    assert not (tmp_path / 'w').exists() or not any((tmp_path / 'w').iterdir())
