"""From downloaded archives (or their extracted folders) to the layouts the
dataset configs read. Behind ``tools/prepare_data.py``; see data/README.md.

    prepare_ade20k(src, out='data', allow_partial=False, progress=True) -> PrepareResult
        ADEChallengeData2016.zip or folder -> out/ADEChallengeData2016/
        {images,annotations}/{training,validation}; checks 20,210 / 2,000 pairs.
    prepare_voc_aug(voc, sbd, out='data', allow_partial=False, workers=None,
                    progress=True) -> PrepareResult
        VOCtrainval_11-May-2012.tar (or VOCdevkit folder) + SBD benchmark.tgz (or
        benchmark_RELEASE folder) -> out/VOCdevkit/VOC2012/ with JPEGImages,
        SegmentationClass, SegmentationClassAug (SBD cls/*.mat as label PNGs;
        VOC's own masks, as indices, where VOC has one) and
        ImageSets/Segmentation/{train_aug,val}.txt (10,582 / 1,449 names).

Both are safe to re-run: finished outputs are skipped, a file already there
that differs is never overwritten (the run stops and names it), and a list
that changes keeps its old version as a ``.bak``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from segkit.errors import SegkitError
from segkit.data.archives import (archive_kind, copy_selected, iter_members, manifest_done,
                       write_manifest)
from segkit.facts import ADE_COUNTS, SBD_COUNTS, TRAIN_AUG_COUNT, VOC_COUNTS
from segkit.io import read_lines, write_text_keeping_old
from segkit.data.labels import read_label_png, save_label_png, sbd_segmentation
from segkit.data.parallel import chunked, default_workers, parallel_map, progress_bar

ADE_DIR = 'ADEChallengeData2016'
VOC_DIR = os.path.join('VOCdevkit', 'VOC2012')
SETS = os.path.join('ImageSets', 'Segmentation')

_ADE_PAIR = re.compile(r'(?:^|/)((images/(?:training|validation)/[^/]+\.jpg)|'
                       r'(annotations/(?:training|validation)/[^/]+\.png))$')
_ADE_TXT = re.compile(r'^(?:(?:.*/)?ADEChallengeData2016/)?([^/]+\.txt)$')
_VOC_FILE = re.compile(r'(?:^|/)(?:VOC2012/)?((?:JPEGImages/[^/]+\.jpg)|'
                       r'(?:SegmentationClass/[^/]+\.png)|'
                       r'(?:ImageSets/Segmentation/[^/]+\.txt))$')
_SBD_MAT = re.compile(r'(?:^|/)dataset/cls/([^/]+)\.mat$')
_SBD_LIST = re.compile(r'(?:^|/)dataset/(train|val)\.txt$')


@dataclass
class PrepareResult:
    root: str  # the dataset folder the config's data_root points at
    steps: list = field(default_factory=list)  # (step, written, skipped, note)
    counts: dict = field(default_factory=dict)  # what the final checks counted
    warnings: list = field(default_factory=list)


def _junk(name: str) -> bool:
    base = name.rsplit('/', 1)[-1]
    return '__MACOSX' in name or base.startswith('._') or base.startswith('.')


def _same_dir(a: str, b: str) -> bool:
    return os.path.isdir(a) and os.path.isdir(b) and os.path.samefile(a, b)


def _stems(folder: str, suffix: str) -> set:
    if not os.path.isdir(folder):
        return set()
    return {n[:-len(suffix)] for n in os.listdir(folder)
            if n.endswith(suffix) and not n.startswith('.')}


def _need_source(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise SegkitError(f'{path} does not exist: pass the downloaded {what} '
                          '(see data/README.md for where to get it)')


# ------------------------------------------------------------------- ADE20K

def _ade_select(name: str) -> Optional[str]:
    if _junk(name):
        return None
    m = _ADE_PAIR.search(name)
    if m:
        return m.group(1)
    m = _ADE_TXT.match(name)
    return m.group(1) if m else None


def _resolve_ade_folder(src: str) -> str:
    for cand in (src, os.path.join(src, ADE_DIR)):
        if os.path.isdir(os.path.join(cand, 'images')) and \
                os.path.isdir(os.path.join(cand, 'annotations')):
            return cand
    raise SegkitError(f'{src} has no images/ and annotations/ folders (nor an {ADE_DIR} '
                      'folder with them): pass ADEChallengeData2016.zip or the folder '
                      'it extracts to')


def check_ade20k(root: str, allow_partial: bool = False) -> dict:
    """{split: pairs} after checking every image has its mask and vice versa, and
    (unless ``allow_partial``) the official counts."""
    counts = {}
    for split, expected in ADE_COUNTS.items():
        imgs = _stems(os.path.join(root, 'images', split), '.jpg')
        anns = _stems(os.path.join(root, 'annotations', split), '.png')
        if imgs - anns or anns - imgs:
            lone = sorted(imgs - anns)
            what = (f'{len(lone)} image(s) without a mask (first: {lone[0]}.jpg)' if lone
                    else f'{len(anns - imgs)} mask(s) without an image (first: '
                         f'{sorted(anns - imgs)[0]}.png)')
            raise SegkitError(f'ADE20K {split} in {root} has {what}: the download or '
                              'extraction is incomplete; run prepare_data.py again on the '
                              'complete ADEChallengeData2016.zip')
        if not imgs:
            raise SegkitError(f'ADE20K {split} in {root} has no images: pass the '
                              'complete ADEChallengeData2016.zip (see data/README.md)')
        if len(imgs) != expected and not allow_partial:
            raise SegkitError(f'ADE20K {split} has {len(imgs):,} image/mask pairs, expected '
                              f'{expected:,}: the archive or folder is incomplete; '
                              'download ADEChallengeData2016.zip again, or pass '
                              '--allow-partial to use a subset on purpose')
        counts[split] = len(imgs)
    return counts


def prepare_ade20k(src: str, out: str = 'data', allow_partial: bool = False,
                   progress: bool = True) -> PrepareResult:
    _need_source(src, 'ADEChallengeData2016.zip (or its extracted folder)')
    dest = os.path.join(out, ADE_DIR)
    result = PrepareResult(root=dest)
    if os.path.isdir(src):
        folder = _resolve_ade_folder(src)
        if _same_dir(folder, dest):
            result.steps.append(('copy', 0, 0, f'{dest} is the source: checked in place'))
        else:
            stats = copy_selected(iter_members(folder, f'copying {ADE_DIR}', progress),
                                  _ade_select, dest, folder)
            result.steps.append(('copy', stats.written, stats.skipped, f'from {folder}'))
    elif manifest_done(out, src):
        result.steps.append(('extract', 0, 0, f'{os.path.basename(src)} already extracted'))
    else:
        if archive_kind(src) is None:
            raise SegkitError(f'{src} is not a .zip or .tar archive: pass '
                              'ADEChallengeData2016.zip or the folder it extracts to')
        stats = copy_selected(iter_members(src, f'extracting {os.path.basename(src)}',
                                           progress), _ade_select, dest, src)
        if not stats.outputs:
            raise SegkitError(f'{src} holds no images/ or annotations/ files: is it '
                              'ADEChallengeData2016.zip?')
        write_manifest(out, src, {os.path.join(ADE_DIR, r).replace(os.sep, '/'): s
                                  for r, s in stats.outputs.items()})
        result.steps.append(('extract', stats.written, stats.skipped,
                             f'from {os.path.basename(src)}'))
    result.counts = {f'{k} pairs': v for k, v in check_ade20k(dest, allow_partial).items()}
    return result


# ------------------------------------------------------------ VOC 2012 + SBD

def _resolve_voc_folder(src: str) -> str:
    for cand in (src, os.path.join(src, 'VOC2012'), os.path.join(src, VOC_DIR)):
        if os.path.isdir(os.path.join(cand, 'JPEGImages')):
            return cand
    raise SegkitError(f'{src} has no JPEGImages folder (nor VOC2012/ or VOCdevkit/VOC2012/ '
                      'with one): pass VOCtrainval_11-May-2012.tar or its VOCdevkit folder')


def _resolve_sbd_folder(src: str) -> str:
    for cand in (src, os.path.join(src, 'dataset'),
                 os.path.join(src, 'benchmark_RELEASE', 'dataset')):
        if os.path.isdir(os.path.join(cand, 'cls')):
            return cand
    raise SegkitError(f'{src} has no cls/ folder (nor dataset/cls/ or benchmark_RELEASE/'
                      'dataset/cls/): pass benchmark.tgz or its benchmark_RELEASE folder')


def _voc_select(name: str) -> Optional[str]:
    m = _VOC_FILE.search(name)
    return m.group(1) if m and not _junk(name) else None


def _voc_folder_members(folder: str, progress: bool):
    """The members of VOC2012's sub-folders we use, named as in the archive."""
    for sub in ('JPEGImages', 'SegmentationClass', SETS):
        if os.path.isdir(os.path.join(folder, sub)):
            for m in iter_members(os.path.join(folder, sub), f'copying {sub}', progress):
                m.name = f"{sub.replace(os.sep, '/')}/{m.name}"
                yield m


def _copy_voc(voc: str, out: str, root: str, progress: bool) -> tuple:
    if os.path.isdir(voc):
        folder = _resolve_voc_folder(voc)
        if _same_dir(folder, root):
            return ('VOC2012', 0, 0, f'{root} is the source: used in place')
        stats = copy_selected(_voc_folder_members(folder, progress), _voc_select, root,
                              folder)
        return ('VOC2012', stats.written, stats.skipped, f'from {folder}')
    if manifest_done(out, voc):
        return ('VOC2012', 0, 0, f'{os.path.basename(voc)} already extracted')
    stats = copy_selected(iter_members(voc, f'extracting {os.path.basename(voc)}', progress),
                          _voc_select, root, voc)
    if not stats.outputs:
        raise SegkitError(f'{voc} holds no VOC2012/JPEGImages files: is it '
                          'VOCtrainval_11-May-2012.tar?')
    write_manifest(out, voc, {os.path.join(VOC_DIR, r).replace(os.sep, '/'): s
                              for r, s in stats.outputs.items()})
    return ('VOC2012', stats.written, stats.skipped, f'from {os.path.basename(voc)}')


def _voc_mask_chunk(task) -> list:
    """VOC palette PNGs -> index PNGs in SegmentationClassAug: (name, status, detail)."""
    src_dir, out_dir, names = task
    done = []
    for name in names:
        try:
            labels = read_label_png(os.path.join(src_dir, name + '.png'))
            if labels.ndim != 2:
                done.append((name, 'error', f'mask has shape {labels.shape}, not H x W'))
                continue
            dst = os.path.join(out_dir, name + '.png')
            if os.path.isfile(dst):
                same = np.array_equal(read_label_png(dst), labels)
                done.append((name, 'skipped' if same else 'conflict', dst))
            else:
                save_label_png(dst, labels)
                done.append((name, 'written', dst))
        except Exception as err:  # noqa: BLE001 - reported per file
            done.append((name, 'error', f'{type(err).__name__}: {err}'))
    return done


def _sbd_chunk(task) -> list:
    """SBD .mat (path or bytes) -> index PNG: (name, status, size or detail)."""
    out_dir, items = task
    done = []
    for name, src in items:
        try:
            dst = os.path.join(out_dir, name + '.png')
            save_label_png(dst, sbd_segmentation(src))
            done.append((name, 'written', os.path.getsize(dst)))
        except Exception as err:  # noqa: BLE001 - reported per file
            done.append((name, 'error', f'{type(err).__name__}: {err}'))
    return done


def _raise_errors(errors: list, what: str) -> None:
    if errors:
        name, _, detail = errors[0]
        raise SegkitError(f'{len(errors)} {what} could not be converted (first: {name}: '
                          f'{detail}): the download is corrupt; download it again')


def _voc_masks_to_aug(root: str, workers: int, progress: bool) -> tuple:
    names = sorted(_stems(os.path.join(root, 'SegmentationClass'), '.png'))
    src_dir = os.path.join(root, 'SegmentationClass')
    out_dir = os.path.join(root, 'SegmentationClassAug')
    tasks = [(src_dir, out_dir, c) for c in chunked(names, 64)]
    status = {'written': 0, 'skipped': 0}
    conflicts, errors = [], []
    with progress_bar('VOC masks -> SegmentationClassAug', len(names), progress) as bar:
        for done in parallel_map(_voc_mask_chunk, tasks, workers):
            for item in done:
                if item[1] in status:
                    status[item[1]] += 1
                elif item[1] == 'conflict':
                    conflicts.append(item[2])
                else:
                    errors.append(item)
            bar.advance(len(done))
    _raise_errors(errors, 'VOC SegmentationClass masks')
    note = 'VOC masks as class indices'
    warnings = []
    if conflicts:
        warnings.append(
            f'{len(conflicts)} mask(s) already in SegmentationClassAug differ from '
            f'VOC2012 SegmentationClass (first: {conflicts[0]}); left untouched, so VOC '
            'does not take precedence there: move SegmentationClassAug away and re-run '
            'to rebuild it')
    return set(names), ('VOC masks', status['written'], status['skipped'], note), warnings


def _sbd_to_aug(sbd: str, out: str, root: str, voc_names: set, workers: int,
                progress: bool) -> tuple:
    """Convert SBD masks (VOC names excluded); returns (train, val, step)."""
    out_dir = os.path.join(root, 'SegmentationClassAug')
    lists_rel = {s: os.path.join(SETS, f'sbd_{s}.txt') for s in ('train', 'val')}
    if os.path.isfile(sbd) and manifest_done(out, sbd):
        lists = {s: read_lines(os.path.join(root, p)) for s, p in lists_rel.items()}
        return lists['train'], lists['val'], ('SBD masks', 0, 0,
                                              f'{os.path.basename(sbd)} already converted')
    lists: dict = {}
    skipped, precedence = [], 0
    outputs = {}

    def todo(name: str) -> bool:
        nonlocal precedence
        if name in voc_names:
            precedence += 1  # VOC's own mask is already there
            return False
        dst = os.path.join(out_dir, name + '.png')
        if os.path.isfile(dst):
            skipped.append(name)
            outputs[name] = os.path.getsize(dst)
            return False
        return True

    if os.path.isdir(sbd):
        folder = _resolve_sbd_folder(sbd)
        for split in ('train', 'val'):
            path = os.path.join(folder, f'{split}.txt')
            if not os.path.isfile(path):
                raise SegkitError(f'{path} does not exist: the SBD folder is incomplete; '
                                  'extract benchmark.tgz again')
            lists[split] = read_lines(path)
        cls_dir = os.path.join(folder, 'cls')
        mats = sorted(n[:-4] for n in os.listdir(cls_dir) if n.endswith('.mat')
                      and not n.startswith('.'))
        items = [(n, os.path.join(cls_dir, n + '.mat')) for n in mats if todo(n)]
        tasks = [(out_dir, c) for c in chunked(items, 32)]
        bar_total, source = len(items), folder
    else:
        if archive_kind(sbd) is None:
            raise SegkitError(f'{sbd} is not a .tgz/.tar/.zip archive: pass benchmark.tgz '
                              'or the benchmark_RELEASE folder it extracts to')
        bar_total, source = None, os.path.basename(sbd)

        def stream():
            batch = []
            for m in iter_members(sbd, f'converting {source}', progress):
                mat = _SBD_MAT.search(m.name)
                lst = _SBD_LIST.search(m.name)
                if mat and not _junk(m.name) and todo(mat.group(1)):
                    with m.open() as f:
                        batch.append((mat.group(1), f.read()))
                    if len(batch) == 32:
                        yield (out_dir, batch)
                        batch = []
                elif lst:
                    with m.open() as f:
                        lists[lst.group(1)] = [ln.strip() for ln in
                                               f.read().decode('utf-8').splitlines()
                                               if ln.strip()]
            if batch:
                yield (out_dir, batch)
        tasks = stream()

    written, errors = 0, []
    # a streamed archive has its own bar (bytes read); a folder counts files
    with progress_bar('SBD .mat -> SegmentationClassAug', bar_total,
                      progress and bar_total is not None) as bar:
        for done in parallel_map(_sbd_chunk, tasks, workers):
            for name, status, detail in done:
                if status == 'written':
                    written += 1
                    outputs[name] = detail
                else:
                    errors.append((name, status, detail))
            bar.advance(len(done))
    _raise_errors(errors, 'SBD cls/*.mat files')
    for split in ('train', 'val'):
        if split not in lists:
            raise SegkitError(f'{sbd} has no dataset/{split}.txt: is it SBD\'s '
                              'benchmark.tgz? download it again')
        write_text_keeping_old(os.path.join(root, lists_rel[split]),
                               ''.join(n + '\n' for n in lists[split]))
    if os.path.isfile(sbd):
        man = {os.path.join(VOC_DIR, 'SegmentationClassAug', n + '.png').replace(os.sep, '/'):
               s for n, s in outputs.items()}
        for p in lists_rel.values():
            man[os.path.join(VOC_DIR, p).replace(os.sep, '/')] = None
        write_manifest(out, sbd, man)
    note = f'from {source}; {precedence} name(s) keep VOC\'s mask'
    return lists['train'], lists['val'], ('SBD masks', written, len(skipped), note)


def check_voc_aug(root: str, train_aug: list, val: list, allow_partial: bool) -> dict:
    for names, img_sub, seg_sub, what in (
            (train_aug, 'JPEGImages', 'SegmentationClassAug', 'train_aug'),
            (val, 'JPEGImages', 'SegmentationClass', 'val')):
        imgs = _stems(os.path.join(root, img_sub), '.jpg')
        segs = _stems(os.path.join(root, seg_sub), '.png')
        for have, sub, suffix in ((imgs, img_sub, '.jpg'), (segs, seg_sub, '.png')):
            missing = [n for n in names if n not in have]
            if missing:
                raise SegkitError(
                    f'{len(missing)} {what} name(s) have no {sub}/{missing[0]}{suffix} '
                    f'(in {root}): the VOC or SBD download is incomplete; run '
                    'prepare_data.py voc-aug again on the complete archives')
    if not allow_partial:
        for names, expected, what in ((train_aug, TRAIN_AUG_COUNT, 'train_aug.txt'),
                                      (val, VOC_COUNTS['val'], 'val.txt')):
            if len(names) != expected:
                raise SegkitError(
                    f'{what} has {len(names):,} names, expected {expected:,}: the VOC '
                    'or SBD download is incomplete (or not VOC2012 trainval + SBD '
                    'benchmark.tgz); download them again, or pass --allow-partial '
                    'to use a subset on purpose')
    if not train_aug or not val:
        raise SegkitError(f'{"train_aug" if not train_aug else "val"} is empty: pass the '
                          'complete VOC2012 trainval and SBD downloads')
    return {'train_aug pairs': len(train_aug), 'val pairs': len(val)}


def prepare_voc_aug(voc: str, sbd: str, out: str = 'data', allow_partial: bool = False,
                    workers: Optional[int] = None, progress: bool = True) -> PrepareResult:
    _need_source(voc, 'VOCtrainval_11-May-2012.tar (or its VOCdevkit folder)')
    _need_source(sbd, 'SBD benchmark.tgz (or its benchmark_RELEASE folder)')
    workers = workers or default_workers()
    root = os.path.join(out, VOC_DIR)
    result = PrepareResult(root=root)
    result.steps.append(_copy_voc(voc, out, root, progress))

    sets = os.path.join(root, SETS)
    voc_lists = {}
    for split in ('train', 'val'):
        path = os.path.join(sets, f'{split}.txt')
        if not os.path.isfile(path):
            raise SegkitError(f'{path} does not exist: {voc} is not a complete VOC2012 '
                              'trainval download; download VOCtrainval_11-May-2012.tar again')
        voc_lists[split] = read_lines(path)

    voc_names, step, warns = _voc_masks_to_aug(root, workers, progress)
    result.steps.append(step)
    result.warnings += warns
    sbd_train, sbd_val, step = _sbd_to_aug(sbd, out, root, voc_names, workers, progress)
    result.steps.append(step)

    # one list: SBD train + SBD val + VOC train, minus VOC val (mmseg's converter
    # writes trainaug.txt and aug.txt = that minus VOC train, for concatenation)
    val = voc_lists['val']
    train_aug = sorted((set(sbd_train) | set(sbd_val) | set(voc_lists['train'])) - set(val))
    result.counts = check_voc_aug(root, train_aug, val, allow_partial)
    status = write_text_keeping_old(os.path.join(sets, 'train_aug.txt'),
                                    ''.join(n + '\n' for n in train_aug))
    result.steps.append(('train_aug.txt', int(status == 'written' or
                                              status.startswith('replaced')),
                         int(status == 'unchanged'), status))
    return result


# ---------------------------------------------------------------- the tool

def print_result(result: PrepareResult) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f'prepared {result.root}')
    for col in ('step', 'written', 'skipped', 'note'):
        table.add_column(col, justify='right' if col in ('written', 'skipped') else 'left')
    for step, written, skipped, note in result.steps:
        table.add_row(step, f'{written:,}', f'{skipped:,}', note)
    console = Console()
    console.print(table)
    for key, value in result.counts.items():
        console.print(f'{key}: {value:,}')
    for w in result.warnings:
        console.print(f'[yellow]warning:[/] {w}')


def main(dataset: str, src: Optional[str] = None, voc: Optional[str] = None,
         sbd: Optional[str] = None, out: str = 'data', allow_partial: bool = False,
         workers: Optional[int] = None) -> int:
    if dataset == 'ade20k':
        result = prepare_ade20k(src, out, allow_partial)
    else:
        result = prepare_voc_aug(voc, sbd, out, allow_partial, workers)
    print_result(result)
    config = ('configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512.py'
              if dataset == 'ade20k' else
              'configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512.py')
    from segkit.engine.cli import shell_command
    print(f'next: {shell_command(["python", "tools/validate_dataset.py", config])}')
    return 0
