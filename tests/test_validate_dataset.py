"""tools/validate_dataset.py: each broken case caught with its own message; clean
sets (a tiny custom one, ADE20K and VOC aug through their real base configs) pass."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from data_fixtures import (ADE_BASE, ROOT, VOC_BASE, blocks, make_ade, make_sbd, make_voc,
                           tiny_config, write_jpg, write_png)
from segkit.engine.config import load_config
from segkit.data.validate import inspect_pair, label_lut, validate

CLASSES = ('bg', 'road', 'car', 'person')
SIZE = (32, 48)  # H, W


def make_clean(root, n=3):
    """root/img/*.jpg + root/ann/*.png, labels 0..3 in stripes; returns root."""
    for i in range(n):
        write_jpg(os.path.join(root, 'img', f'im{i}.jpg'), SIZE, seed=i)
        write_png(os.path.join(root, 'ann', f'im{i}.png'), blocks(SIZE, [0, 1 + i % 3]))
    return root


def run(tmp_path, break_it=None, split='train', **cfg_kw):
    root = make_clean(str(tmp_path / 'ds'))
    if break_it:
        break_it(root)
    cfg = load_config(str(tiny_config(tmp_path / 'cfg.py', root, CLASSES, **cfg_kw)))
    return validate(cfg, [split], workers=1, progress=False)


def only(report, kind):
    found = [f for f in report.findings if f.kind == kind]
    assert found, f'no {kind} finding in {[str(f) for f in report.findings]}'
    others = [f for f in report.findings if f.kind != kind]
    assert not others, [str(f) for f in others]
    return found


# ------------------------------------------------------------------ clean sets

def test_clean_set_passes_with_exact_counts(tmp_path):
    report = run(tmp_path)
    assert report.ok and report.findings == []
    assert report.num_classes == 4 and report.class_names == list(CLASSES)
    half = SIZE[0] * SIZE[1] // 2
    np.testing.assert_array_equal(report.class_pixels('train'), [3 * half, half, half, half])
    np.testing.assert_array_equal(report.class_images('train'), [3, 1, 1, 1])
    assert report.splits[0].checked == 3


def test_workers_and_sample_give_consistent_counts(tmp_path):
    root = make_clean(str(tmp_path / 'ds'), n=8)
    cfg = load_config(str(tiny_config(tmp_path / 'cfg.py', root, CLASSES)))
    one = validate(cfg, ['train'], workers=1, progress=False)
    two = validate(cfg, ['train'], workers=2, progress=False)
    np.testing.assert_array_equal(one.class_pixels(), two.class_pixels())
    np.testing.assert_array_equal(one.class_present_pixels(), two.class_present_pixels())
    sample = validate(cfg, ['train', 'val'], sample=3, workers=1, progress=False)
    assert [(s.split, s.total, s.checked) for s in sample.splits] == \
        [('train', 8, 3), ('val', 8, 3)]


def test_ade20k_base_config_with_reduce_zero_label(tmp_path):
    ade = make_ade(tmp_path, n_train=2, n_val=1)
    cfg = load_config(str(ADE_BASE), {f'{s}_dataloader.dataset.data_root': str(ade)
                                      for s in ('train', 'val')})
    report = validate(cfg, ['train', 'val'], workers=1, progress=False)
    assert report.ok, [str(f) for f in report.findings]
    assert report.num_classes == 150 and report.class_names[0] == 'wall'
    # raw stripes [0, i, 150 - i, 37 + i] -> ignore, i-1, 149-i, 36+i (12 px wide each)
    px = report.class_pixels('train')
    stripe = 32 * 12
    assert {int(c) for c in np.flatnonzero(px)} == {0, 148, 37, 1, 147, 38}
    assert px[0] == stripe and report.ignored_pixels('train') == 2 * stripe
    assert all(s.reduce_zero_label for s in report.splits)


def test_prepared_voc_aug_passes_the_voc_base_config(tmp_path):
    from segkit.data.prepare import prepare_voc_aug
    result = prepare_voc_aug(str(make_voc(tmp_path / 'v')), str(make_sbd(tmp_path / 's')),
                             str(tmp_path / 'data'), allow_partial=True, workers=1,
                             progress=False)
    cfg = load_config(str(VOC_BASE), {f'{s}_dataloader.dataset.data_root': result.root
                                      for s in ('train', 'val')})
    report = validate(cfg, ['train', 'val'], workers=1, progress=False)
    assert report.ok, [str(f) for f in report.findings]
    assert [(s.split, s.total) for s in report.splits] == [('train', 7), ('val', 2)]
    assert report.num_classes == 21 and report.ignored_pixels('val') > 0


# ------------------------------------------------------- one broken case each

def _png(root, name, arr, **kw):
    write_png(os.path.join(root, 'ann', name), arr, **kw)


def test_image_without_mask(tmp_path):
    rep = run(tmp_path, lambda r: os.remove(os.path.join(r, 'ann', 'im1.png')))
    (f,) = only(rep, 'missing_mask')
    assert f.path.endswith('im1.png') and 'image im1.jpg has no mask' in f.message
    assert f.severity == 'error' and f.split == 'train'


def test_mask_without_image(tmp_path):
    rep = run(tmp_path, lambda r: os.remove(os.path.join(r, 'img', 'im2.jpg')))
    (f,) = only(rep, 'orphan_mask')
    assert f.path.endswith('im2.png') and 'mask has no image im2.jpg' in f.message
    assert f.severity == 'error'


def test_size_mismatch(tmp_path):
    rep = run(tmp_path, lambda r: _png(r, 'im0.png', np.zeros((SIZE[0], SIZE[1] - 8))))
    (f,) = only(rep, 'size_mismatch')
    assert 'mask is 40x32 but its image is 48x32' in f.message


def test_rgb_colour_mask(tmp_path):
    def rgb(r):
        colours = np.zeros(SIZE + (3,), np.uint8)
        colours[:, :10] = (128, 0, 0)
        Image.fromarray(colours).save(os.path.join(r, 'ann', 'im0.png'))
    (f,) = only(run(tmp_path, rgb), 'mask_channels')
    assert 'mask has 3 channels (RGB)' in f.message and 'colour to its class index' in f.message


def test_truncated_image(tmp_path):
    def truncate(r):
        p = os.path.join(r, 'img', 'im1.jpg')
        data = open(p, 'rb').read()
        open(p, 'wb').write(data[:len(data) // 2])
    (f,) = only(run(tmp_path, truncate), 'unreadable_image')
    assert 'image cannot be decoded' in f.message and 'truncated' in f.message


def test_corrupt_mask(tmp_path):
    def corrupt(r):
        p = os.path.join(r, 'ann', 'im1.png')
        data = open(p, 'rb').read()
        open(p, 'wb').write(data[:len(data) // 2])
    (f,) = only(run(tmp_path, corrupt), 'unreadable_mask')
    assert 'mask cannot be decoded' in f.message


def test_labels_outside_num_classes(tmp_path):
    rep = run(tmp_path, lambda r: _png(r, 'im2.png', blocks(SIZE, [0, 1, 7, 9])))
    (f,) = only(rep, 'label_out_of_range')
    assert '50.0% of the pixels have labels 7, 9, outside 0..3 (num_classes=4)' in f.message
    assert f.fraction == pytest.approx(0.5)
    assert rep.class_pixels()[1] > 0  # the in-range pixels still count


def test_binary_0_255_masks(tmp_path):
    def binary(r):
        for i in range(3):
            _png(r, f'im{i}.png', blocks(SIZE, [0, 255]))
    found = only(run(tmp_path, binary), 'binary_mask')
    assert len(found) == 3
    assert 'only 0 and 255' in found[0].message and 'mask // 255' in found[0].message
    rep = run(tmp_path / 'rzl', binary, reduce_zero_label=True)
    assert 'trains on nothing' in only(rep, 'binary_mask')[0].message


def test_empty_split(tmp_path):
    def empty(r):
        for sub in ('img', 'ann'):
            shutil.rmtree(os.path.join(r, sub))
            os.makedirs(os.path.join(r, sub))
    rep = run(tmp_path, empty)
    (f,) = only(rep, 'empty_split')
    assert 'the train split has no image/mask pairs' in f.message and 'no *.jpg' in f.message


def test_missing_data_root_and_listed_image(tmp_path):
    rep = run(tmp_path, lambda r: shutil.rmtree(os.path.join(r, 'img')))
    (f,) = only(rep, 'dataset')
    assert 'img_path does not exist' in f.message and 'prepare_data.py' in f.message
    # an ann_file naming an image that is not there
    rep = run(tmp_path / 'b', lambda r: open(os.path.join(r, 'list.txt'), 'w').write(
        'im0\nim9\n'), ann_file='list.txt')
    (f,) = only(rep, 'missing_image')
    assert f.path.endswith('im9.jpg')


def test_sixteen_bit_mask_and_all_ignored_mask(tmp_path):
    def wide(r):
        arr = blocks(SIZE, [0, 1]).astype(np.uint16)
        arr[:, :4] = 300
        Image.fromarray(arr).save(os.path.join(r, 'ann', 'im0.png'))
    rep = run(tmp_path, wide)
    assert 'values above 255 wrap around' in \
        [f for f in rep.findings if f.kind == 'mask_16bit'][0].message
    rep = run(tmp_path / 'b', lambda r: _png(r, 'im0.png', np.full(SIZE, 255)))
    (f,) = only(rep, 'no_labels')
    assert f.severity == 'warning' and rep.ok  # warnings do not fail


def test_config_contradictions(tmp_path):
    rep = run(tmp_path, head=dict(type='FCNHead', num_classes=5))
    (f,) = only(rep, 'config')
    assert 'is 5 but the dataset has 4 classes' in f.message
    rep = run(tmp_path / 'b', load_ann=dict(reduce_zero_label=True))
    (f,) = only(rep, 'config')
    assert 'reduce_zero_label=True but the dataset has False' in f.message


def test_exif_rotation_is_applied_like_the_loader(tmp_path):
    img = tmp_path / 'rot.jpg'
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: the loader returns W x H swapped
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(img, exif=exif)
    write_png(tmp_path / 'rotated.png', np.zeros((30, 20)))
    write_png(tmp_path / 'raw.png', np.zeros((20, 30)))
    assert inspect_pair(str(img), str(tmp_path / 'rotated.png'), 4).findings == []
    (f,) = inspect_pair(str(img), str(tmp_path / 'raw.png'), 4).findings
    assert f.kind == 'size_mismatch' and 'EXIF rotation' in f.message


def test_reduce_zero_label_lut_matches_mmseg():
    from mmseg.datasets.transforms import LoadAnnotations
    raw = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = os.path.join(os.environ.get('TMPDIR', '/tmp'), f'lut-{os.getpid()}.png')
    Image.fromarray(raw).save(path)
    try:
        out = LoadAnnotations()(dict(seg_map_path=path, reduce_zero_label=True,
                                     seg_fields=[]))['gt_seg_map']
    finally:
        os.remove(path)
    np.testing.assert_array_equal(label_lut(True)[raw], out)


# ------------------------------------------------------------------ the tool

@pytest.mark.slow  # a real subprocess: seconds to import the stack
def test_cli_exit_codes(tmp_path):
    clean = make_clean(str(tmp_path / 'clean'))
    broken = make_clean(str(tmp_path / 'broken'))
    _png(broken, 'im0.png', blocks(SIZE, [0, 200]))
    tool = [sys.executable, str(ROOT / 'tools' / 'validate_dataset.py')]
    cfg = tiny_config(tmp_path / 'cfg.py', clean, CLASSES)
    ok = subprocess.run(tool + [str(cfg), '--workers', '2'], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert 'OK: 0 error(s)' in ok.stdout and 'person' in ok.stdout
    bad = subprocess.run(tool + [str(cfg), '--split', 'train', '--cfg-options',
                                 f'train_dataloader.dataset.data_root={broken}'],
                         capture_output=True, text=True)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert 'label_out_of_range' in bad.stdout and 'FAIL: 1 error(s)' in bad.stdout
