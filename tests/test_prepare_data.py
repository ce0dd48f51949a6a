"""tools/prepare_data.py: ADE20K and VOC aug from archives and from folders."""
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io as sio
from PIL import Image

from data_fixtures import (ROOT, SBD_TRAIN, SBD_VAL, VOC_TRAIN, VOC_VAL, make_ade,
                           make_sbd, make_voc, tar_dir, voc_mask, write_png, zip_dir)
from segkit.data.prepare import main as prepare_main
from segkit.data.prepare import prepare_ade20k, prepare_voc_aug
from segkit.errors import SegkitError


def snapshot(folder):
    """{relative path: (mtime_ns, bytes)} of every file under ``folder``."""
    out = {}
    for dirpath, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, 'rb') as f:
                out[os.path.relpath(p, folder)] = (os.stat(p).st_mtime_ns, f.read())
    return out


@pytest.fixture(scope='module')
def ade_src(tmp_path_factory):
    base = tmp_path_factory.mktemp('ade_src')
    folder = make_ade(base)
    archive = zip_dir(folder, base / 'ADEChallengeData2016.zip', 'ADEChallengeData2016')
    with __import__('zipfile').ZipFile(archive, 'a') as zf:  # macOS junk, as real zips have
        zf.writestr('__MACOSX/ADEChallengeData2016/images/training/._ADE_train_00000001.jpg',
                    b'junk')
    return folder, archive


@pytest.fixture(scope='module')
def voc_src(tmp_path_factory):
    base = tmp_path_factory.mktemp('voc_src')
    vocdevkit = make_voc(base)
    sbd = make_sbd(base)
    return dict(voc_dir=vocdevkit, sbd_dir=sbd,
                voc_tar=tar_dir(vocdevkit, base / 'VOCtrainval_11-May-2012.tar', 'VOCdevkit'),
                sbd_tgz=tar_dir(sbd, base / 'benchmark.tgz', 'benchmark_RELEASE', 'w:gz'))


# ------------------------------------------------------------------- ADE20K

def test_ade20k_zip_and_folder_give_the_same_tree(ade_src, tmp_path):
    folder, archive = ade_src
    from_zip = prepare_ade20k(str(archive), str(tmp_path / 'a'), allow_partial=True,
                              progress=False)
    from_dir = prepare_ade20k(str(folder), str(tmp_path / 'b'), allow_partial=True,
                              progress=False)
    assert from_zip.counts == from_dir.counts == {'training pairs': 3,
                                                  'validation pairs': 2}
    a = {k: v[1] for k, v in snapshot(from_zip.root).items()}
    b = {k: v[1] for k, v in snapshot(from_dir.root).items()}
    src = {k: v[1] for k, v in snapshot(folder).items()}
    assert a == b == src  # byte for byte, no macOS junk
    assert os.path.join('images', 'training', 'ADE_train_00000001.jpg') in a


def test_ade20k_rerun_skips_and_changes_nothing(ade_src, tmp_path):
    folder, archive = ade_src
    out = str(tmp_path / 'data')
    first = prepare_ade20k(str(archive), out, allow_partial=True, progress=False)
    before = snapshot(out)
    again = prepare_ade20k(str(archive), out, allow_partial=True, progress=False)
    assert again.steps[0][1] == 0 and 'already extracted' in again.steps[0][3]
    # the extracted folder itself as the source: checked in place
    in_place = prepare_ade20k(first.root, out, allow_partial=True, progress=False)
    assert 'in place' in in_place.steps[0][3]
    assert snapshot(out) == before


def test_ade20k_refuses_incomplete_sets(ade_src, tmp_path):
    folder, archive = ade_src
    with pytest.raises(SegkitError, match=r'expected 20,210.*--allow-partial'):
        prepare_ade20k(str(archive), str(tmp_path / 'a'), progress=False)
    # the tool's entry point (run_tool turns this into 'error: ...', exit 2)
    with pytest.raises(SegkitError, match='ADE20K training has 3 image/mask pairs'):
        prepare_main('ade20k', src=str(archive), out=str(tmp_path / 'a'))
    out = tmp_path / 'b'
    prepare_ade20k(str(archive), str(out), allow_partial=True, progress=False)
    os.remove(out / 'ADEChallengeData2016' / 'annotations' / 'validation' /
              'ADE_val_00000002.png')
    with pytest.raises(SegkitError, match='1 image.s. without a mask .first: ADE_val_00000002'):
        prepare_ade20k(str(out / 'ADEChallengeData2016'), str(out), allow_partial=True,
                       progress=False)


def test_ade20k_never_overwrites_a_different_file(ade_src, tmp_path):
    folder, archive = ade_src
    out = tmp_path / 'data'
    mine = out / 'ADEChallengeData2016' / 'images' / 'training' / 'ADE_train_00000002.jpg'
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b'the user\'s own file')
    with pytest.raises(SegkitError, match='1 file.s. already in the output differ'):
        prepare_ade20k(str(archive), str(out), allow_partial=True, progress=False)
    assert mine.read_bytes() == b'the user\'s own file'


# ------------------------------------------------------------ VOC 2012 + SBD

EXPECTED_TRAIN_AUG = sorted((set(SBD_TRAIN) | set(SBD_VAL) | set(VOC_TRAIN)) - set(VOC_VAL))


def check_voc_aug_tree(root, voc_dir, sbd_dir):
    sets = os.path.join(root, 'ImageSets', 'Segmentation')
    assert open(os.path.join(sets, 'train_aug.txt')).read().split() == EXPECTED_TRAIN_AUG
    assert open(os.path.join(sets, 'val.txt')).read().split() == VOC_VAL
    aug = os.path.join(root, 'SegmentationClassAug')
    assert sorted(os.listdir(aug)) == sorted(
        f'{n}.png' for n in set(SBD_TRAIN + SBD_VAL + VOC_TRAIN + VOC_VAL))
    for name in set(SBD_TRAIN + SBD_VAL) - set(VOC_TRAIN + VOC_VAL):
        mat = sio.loadmat(os.path.join(sbd_dir, 'dataset', 'cls', f'{name}.mat'))
        with Image.open(os.path.join(aug, f'{name}.png')) as img:
            assert img.mode == 'L'
            np.testing.assert_array_equal(np.array(img), mat['GTcls']['Segmentation'][0, 0])
    for name in VOC_TRAIN + VOC_VAL:  # VOC's mask wins, as indices (255 kept)
        with Image.open(os.path.join(aug, f'{name}.png')) as img:
            assert img.mode == 'L'
            got = np.array(img)
        with Image.open(os.path.join(voc_dir, 'VOC2012', 'SegmentationClass',
                                     f'{name}.png')) as src:
            assert src.mode == 'P'
            np.testing.assert_array_equal(got, np.array(src))
        np.testing.assert_array_equal(got, voc_mask(name, got.shape))
        assert 255 in got
    assert not os.path.exists(os.path.join(root, 'Annotations'))  # not needed, not copied


def test_voc_aug_from_archives_and_folders_then_rerun(voc_src, tmp_path):
    out = str(tmp_path / 'a')
    a = prepare_voc_aug(str(voc_src['voc_tar']), str(voc_src['sbd_tgz']), out,
                        allow_partial=True, workers=2, progress=False)
    assert a.root == os.path.join(out, 'VOCdevkit', 'VOC2012')
    assert a.counts == {'train_aug pairs': len(EXPECTED_TRAIN_AUG), 'val pairs': len(VOC_VAL)}
    check_voc_aug_tree(a.root, voc_src['voc_dir'], voc_src['sbd_dir'])
    before = snapshot(out)
    again = prepare_voc_aug(str(voc_src['voc_tar']), str(voc_src['sbd_tgz']), out,
                            allow_partial=True, workers=1, progress=False)
    assert [s[1] for s in again.steps] == [0, 0, 0, 0]  # nothing written
    assert snapshot(out) == before
    # the extracted folders give the same tree, byte for byte
    b = prepare_voc_aug(str(voc_src['voc_dir']), str(voc_src['sbd_dir']),
                        str(tmp_path / 'b'), allow_partial=True, workers=1, progress=False)
    assert {k: v[1] for k, v in snapshot(a.root).items()} == \
        {k: v[1] for k, v in snapshot(b.root).items()}
    # the prepared VOCdevkit as the source: used in place, nothing rewritten
    before = snapshot(b.root)
    c = prepare_voc_aug(os.path.dirname(b.root), str(voc_src['sbd_dir']),
                        str(tmp_path / 'b'), allow_partial=True, workers=1, progress=False)
    assert 'in place' in c.steps[0][3] and snapshot(b.root) == before


def test_voc_aug_keeps_an_existing_different_mask(voc_src, tmp_path):
    out = tmp_path / 'data'
    theirs = out / 'VOCdevkit' / 'VOC2012' / 'SegmentationClassAug' / f'{VOC_TRAIN[0]}.png'
    write_png(theirs, np.full((32, 40), 3, np.uint8))
    before = theirs.read_bytes()
    result = prepare_voc_aug(str(voc_src['voc_dir']), str(voc_src['sbd_dir']), str(out),
                             allow_partial=True, workers=1, progress=False)
    assert theirs.read_bytes() == before
    assert any('differ from VOC2012 SegmentationClass' in w for w in result.warnings)


def test_voc_aug_refuses_incomplete_sets_and_missing_inputs(voc_src, tmp_path):
    with pytest.raises(SegkitError, match=r'train_aug.txt has 7 names, expected 10,582'):
        prepare_voc_aug(str(voc_src['voc_tar']), str(voc_src['sbd_tgz']),
                        str(tmp_path / 'a'), workers=1, progress=False)
    with pytest.raises(SegkitError, match='does not exist: pass the downloaded SBD'):
        prepare_voc_aug(str(voc_src['voc_tar']), str(tmp_path / 'nope.tgz'),
                        str(tmp_path / 'b'), workers=1, progress=False)


@pytest.mark.slow  # a real subprocess: seconds to import the stack
def test_cli_prepares_ade20k(ade_src, tmp_path):
    folder, archive = ade_src
    out = tmp_path / 'data'
    run = subprocess.run([sys.executable, str(ROOT / 'tools' / 'prepare_data.py'), 'ade20k',
                          str(archive), '--out', str(out), '--allow-partial'],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert 'training pairs: 3' in run.stdout
    assert 'tools/validate_dataset.py' in run.stdout
