"""Tiny datasets in the real on-disk formats (ADE20K, VOC2012, SBD), their
archives, and small configs pointing at them. Shared by the data tool tests."""
from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ADE_BASE = ROOT / 'configs' / '_base_' / 'datasets' / 'ade20k_epoch.py'
VOC_BASE = ROOT / 'configs' / '_base_' / 'datasets' / 'voc12aug_epoch.py'


def voc_palette() -> list:
    """The VOC colour map (bit-interleaved), 256 RGB triples flattened."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def write_jpg(path, size, seed=0) -> None:
    """A random RGB JPEG of ``size`` = (H, W)."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arr = rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, quality=90)


def write_png(path, labels, palette: bool = False) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = Image.fromarray(np.asarray(labels, dtype=np.uint8))
    if palette:
        img = img.convert('P')  # 'L' -> 'P' keeps the indices
        img.putpalette(voc_palette())
    img.save(path)


def blocks(size, values) -> np.ndarray:
    """An (H, W) label map of vertical stripes, one per value (all present)."""
    h, w = size
    out = np.zeros((h, w), np.uint8)
    edges = np.linspace(0, w, len(values) + 1).astype(int)
    for v, a, b in zip(values, edges[:-1], edges[1:]):
        out[:, a:b] = v
    return out


# ------------------------------------------------------------------- ADE20K

def make_ade(root, n_train: int = 3, n_val: int = 2, size=(32, 48)) -> Path:
    """root/ADEChallengeData2016 with raw labels 0 ("other") .. 150; returns it."""
    ade = Path(root) / 'ADEChallengeData2016'
    for split, n, tag in (('training', n_train, 'train'), ('validation', n_val, 'val')):
        for i in range(1, n + 1):
            name = f'ADE_{tag}_{i:08d}'
            write_jpg(ade / 'images' / split / f'{name}.jpg', size, seed=i)
            write_png(ade / 'annotations' / split / f'{name}.png',
                      blocks(size, [0, i, 150 - i, 37 + i]))
    (ade / 'objectInfo150.txt').write_text('Idx\tRatio\tTrain\tVal\tName\n')
    return ade


def zip_dir(folder, zip_path, arc_root: str) -> Path:
    """Zip ``folder`` with members under ``arc_root/`` (as the real archives)."""
    folder = Path(folder)
    with zipfile.ZipFile(zip_path, 'w', zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f'{arc_root}/', '')  # directory entry, as unzip-made zips have
        for p in sorted(folder.rglob('*')):
            if p.is_file():
                zf.write(p, f'{arc_root}/{p.relative_to(folder).as_posix()}')
    return Path(zip_path)


def tar_dir(folder, tar_path, arc_root: str, mode: str = 'w') -> Path:
    with tarfile.open(tar_path, mode) as tf:
        tf.add(folder, arcname=arc_root)
    return Path(tar_path)


# ---------------------------------------------------------------- VOC + SBD

VOC_TRAIN = ['2007_000032', '2007_000039', '2008_000008']
VOC_VAL = ['2007_000033', '2007_000042']
SBD_TRAIN = ['2008_000002', '2008_000003', '2007_000032', '2007_000033']  # 2 overlap VOC
SBD_VAL = ['2008_000007', '2008_000009', '2007_000039']
VOC_EXTRA = ['2008_000010']  # a JPEG with no mask anywhere (as in VOC)


def voc_mask(name: str, size) -> np.ndarray:
    """VOC-style: background, one object class, a 255 boundary line."""
    cls = 1 + sum(map(ord, name)) % 20
    m = blocks(size, [0, cls])
    m[:, size[1] // 2] = 255
    return m


def sbd_mask(name: str, size) -> np.ndarray:
    """SBD-style: no boundary label, two object classes (differs from voc_mask)."""
    a = 1 + sum(map(ord, name)) % 20
    return blocks(size, [0, a, 1 + a % 20])


def make_voc(root, size=(32, 40)) -> Path:
    """root/VOCdevkit/VOC2012 with palette masks for VOC train+val; returns VOCdevkit."""
    voc = Path(root) / 'VOCdevkit' / 'VOC2012'
    names = sorted(set(VOC_TRAIN + VOC_VAL + SBD_TRAIN + SBD_VAL + VOC_EXTRA))
    for i, n in enumerate(names):
        write_jpg(voc / 'JPEGImages' / f'{n}.jpg', size, seed=i)
    for n in VOC_TRAIN + VOC_VAL:
        write_png(voc / 'SegmentationClass' / f'{n}.png', voc_mask(n, size), palette=True)
    sets = voc / 'ImageSets' / 'Segmentation'
    sets.mkdir(parents=True)
    for split, lst in (('train', VOC_TRAIN), ('val', VOC_VAL),
                       ('trainval', VOC_TRAIN + VOC_VAL)):
        (sets / f'{split}.txt').write_text(''.join(n + '\n' for n in lst))
    (voc / 'Annotations').mkdir()
    (voc / 'Annotations' / f'{VOC_TRAIN[0]}.xml').write_text('<annotation/>')
    return voc.parent


def write_sbd_mat(path, seg: np.ndarray) -> None:
    """An SBD cls/*.mat: struct GTcls with Boundaries (cell of sparse edge maps,
    one per class), Segmentation (uint8 H x W) and CategoriesPresent."""
    import scipy.io as sio
    import scipy.sparse as sp
    bounds = np.empty((20, 1), dtype=object)
    for c in range(20):
        edge = np.zeros(seg.shape, bool)
        mask = seg == c + 1
        edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
        bounds[c, 0] = sp.csc_matrix(edge)
    cats = np.array([[c] for c in np.unique(seg) if c > 0], np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sio.savemat(path, {'GTcls': {'Boundaries': bounds, 'Segmentation': seg.astype(np.uint8),
                                 'CategoriesPresent': cats}}, do_compression=True)


def make_sbd(root, size=(32, 40)) -> Path:
    """root/benchmark_RELEASE/dataset/{cls,img,train.txt,val.txt}; returns benchmark_RELEASE."""
    ds = Path(root) / 'benchmark_RELEASE' / 'dataset'
    for i, n in enumerate(SBD_TRAIN + SBD_VAL):
        write_sbd_mat(ds / 'cls' / f'{n}.mat', sbd_mask(n, size))
        write_jpg(ds / 'img' / f'{n}.jpg', size, seed=100 + i)
    (ds / 'train.txt').write_text(''.join(n + '\n' for n in SBD_TRAIN))
    (ds / 'val.txt').write_text(''.join(n + '\n' for n in SBD_VAL))
    return ds.parent


# ------------------------------------------------------------------- configs

def tiny_config(path, data_root, classes, *, reduce_zero_label=False, head=None,
                ann_file='', img_dir='img', seg_dir='ann', load_ann: dict = None,
                extra: str = '') -> Path:
    """A small mmseg config over ``data_root/{img_dir,seg_dir}`` (train and val
    read the same files; val in test_mode, else segkit takes it for a repeat of
    train) with ``classes`` in its metainfo."""
    head_line = f'model = dict(decode_head={head!r})\n' if head else ''
    ds = (f"dict(type='BaseSegDataset', data_root={str(data_root)!r}, "
          f"metainfo=dict(classes={tuple(classes)!r}), ann_file={ann_file!r}, "
          f"data_prefix=dict(img_path={img_dir!r}, seg_map_path={seg_dir!r}), "
          f"reduce_zero_label={reduce_zero_label}, "
          f"pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', "
          f"**{load_ann or {}!r})]")
    Path(path).write_text(
        "default_scope = 'mmseg'\n"
        f'train_dataloader = dict(batch_size=1, dataset={ds}))\n'
        f'val_dataloader = dict(batch_size=1, dataset={ds}, test_mode=True))\n'
        + head_line + extra)
    return Path(path)
