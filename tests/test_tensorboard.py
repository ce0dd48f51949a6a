"""TensorBoard as the user reads it, through TensorBoard's own event reader: one run per
work dir, continued by a resume (SIGKILL mid-epoch), one x-axis, grouped tags, the
custom-scalars layout and the validation images."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DEMO_CONFIG, ROOT, demo_options, run_py

pytestmark = pytest.mark.slow


def _accumulate(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run_dir), size_guidance={'scalars': 0, 'images': 0,
                                                        'tensors': 0})
    acc.Reload()  # purges what a resume's purge_step drops, as TensorBoard does
    return acc


def _train_until_killed(cmd, mark: str, timeout=300):
    """Start training; SIGKILL it once ``mark`` (e.g. '[2][3/4]') is in its log."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    proc = subprocess.Popen([sys.executable, *map(str, cmd)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + timeout
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if ('Epoch(train)' in line and mark in line) or time.time() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return ''.join(seen)


def test_killed_and_resumed_run_reads_as_one_run(demo_data, tmp_path):
    # 16 images, batch 4: 4 iterations per epoch, 3 epochs; killed in epoch 2 after
    # iteration 7 (epoch_1.pth at iteration 4), then resumed
    work = tmp_path / 'work'
    opts = demo_options(demo_data, epochs=3)
    train = ['tools/train.py', DEMO_CONFIG, '--work-dir', work, '--cfg-options', *opts]
    out = _train_until_killed(train, '[2][3/4]')  # epoch 2, iteration 7
    assert (work / 'epoch_1.pth').exists() and not (work / 'epoch_2.pth').exists(), out[-3000:]
    killed_at = time.time()
    run_py(*train[:4], '--resume', '--cfg-options', *opts,
           env=dict(OMP_NUM_THREADS='1'))

    assert [p.name for p in work.iterdir() if p.name == 'tensorboard'] == ['tensorboard']
    assert not list(work.glob('*/vis_data/events.out.tfevents.*'))  # one run only
    files = sorted((work / 'tensorboard').glob('events.out.tfevents.*'))
    assert len(files) == 2
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    killed_steps = {e.step for e in EventFileLoader(str(files[0])).Load()
                    for v in e.summary.value if v.tag == 'train/loss'}
    assert set(range(1, 7)) <= killed_steps  # the killed run logged past its checkpoint
    acc = _accumulate(work / 'tensorboard')
    tags = acc.Tags()
    for tag in tags['scalars']:
        steps = [e.step for e in acc.Scalars(tag)]
        assert steps == sorted(set(steps)), (tag, steps)
    for tag in tags['images']:
        steps = [e.step for e in acc.Images(tag)]
        assert steps == sorted(set(steps)), (tag, steps)
    loss = acc.Scalars('train/loss')
    assert [e.step for e in loss] == list(range(1, 13))  # no gap, no duplicate
    # what the killed run logged after its checkpoint (iterations 5-7) is gone:
    # those steps now hold the resumed run's values
    assert all(e.wall_time > killed_at for e in loss if e.step > 4)
    assert all(e.wall_time < killed_at for e in loss if e.step <= 4)
    # one validation point per epoch, at the iteration it ran
    assert [e.step for e in acc.Scalars('val/mIoU')] == [4, 8, 12]

    # the tag set: grouped, one x-axis, no bare epoch / iter
    classes = ('background', 'disk', 'ring', 'square', 'triangle')
    expected = {'train/loss', 'train/decode.loss_ce', 'train/decode.acc_seg', 'train/lr',
                'val/mIoU', 'val/mAcc', 'val/aAcc', 'perf/iter_time', 'perf/data_time',
                'perf/images_per_s', 'progress/epoch'}
    expected |= {f'val_{m}/{c}' for m in ('IoU', 'Acc') for c in classes}
    assert set(tags['scalars']) == expected
    assert [round(e.value, 2) for e in acc.Scalars('progress/epoch')][:5] == [
        0.25, 0.5, 0.75, 1.0, 1.25]
    # K=4 prediction panels (image | ground truth | prediction) per validation
    assert sorted(tags['images']) == [f'val_images/{k}' for k in range(4)]
    img = acc.Images('val_images/0')
    assert [e.step for e in img] == [4, 8, 12] and img[0].width > 3 * 64 > img[0].height
    # the custom-scalars layout names existing tags
    from tensorboard.plugins.custom_scalar import layout_pb2
    import re
    layout = layout_pb2.Layout()
    layout.ParseFromString(acc.Tensors('custom_scalars__config__')[-1]
                           .tensor_proto.string_val[0])
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    assert {'train/loss', 'train/lr', 'val/mIoU', 'IoU of every class'} <= set(charts)
    for title, regexes in charts.items():
        assert any(re.search(r, t) for r in regexes for t in tags['scalars']), title
    assert sum(bool(re.search(charts['IoU of every class'][0], t))
               for t in tags['scalars']) == len(classes)


def test_weakest_classes_chart_and_images_off(demo_data, tmp_path):
    """More classes than 2 x weakest: a chart of the weakest at the latest validation;
    num_images=0 turns the images off."""
    work = tmp_path / 'work'
    run_py('tools/train.py', DEMO_CONFIG, '--work-dir', work, '--cfg-options',
           *demo_options(demo_data, epochs=1), 'custom_hooks.1.weakest=2',
           'custom_hooks.1.num_images=0', env=dict(OMP_NUM_THREADS='1'))
    acc = _accumulate(work / 'tensorboard')
    assert acc.Tags()['images'] == []
    from tensorboard.plugins.custom_scalar import layout_pb2
    layouts = acc.Tensors('custom_scalars__config__')
    assert [e.step for e in layouts] == [0, 4]  # the start, then each validation
    layout = layout_pb2.Layout()
    layout.ParseFromString(layouts[-1].tensor_proto.string_val[0])
    weakest = [c for cat in layout.category for c in cat.chart if 'weakest' in c.title]
    assert len(weakest) == 1 and len(weakest[0].multiline.tag) == 2
    ious = {e: acc.Scalars(e)[-1].value for e in acc.Tags()['scalars']
            if e.startswith('val_IoU/')}
    shown = [t.strip('^$').replace('\\', '') for t in weakest[0].multiline.tag]
    assert sorted(ious[t] for t in shown) == sorted(ious.values())[:2]
