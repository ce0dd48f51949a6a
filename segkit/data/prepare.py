"""From downloaded archives (.zip, .tar, .tgz) or their extracted folders to the layouts
the dataset configs read (ADE20K; VOC2012 + SBD as SegmentationClassAug index PNGs and
train_aug.txt); behind ``tools/prepare_data.py`` (see data/README.md).

Safe to re-run: finished outputs are skipped, a differing file is never overwritten (the
run stops and names it), a changed list keeps its old version as ``.bak``, and a manifest
``<out>/.segkit-prepared/<archive>.json`` (output -> size) skips an archive (tars have no
index) while every output is still there.
"""
from __future__ import annotations

import io
import json
import os
import re
import tarfile
import zipfile
from collections import Counter, namedtuple
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import numpy as np
from PIL import Image

from segkit.data.parallel import chunked, default_workers, parallel_map, progress_bar, table
from segkit.engine.cli import shell_command
from segkit.errors import SegkitError
from segkit.facts import ADE_COUNTS, TRAIN_AUG_COUNT, VOC_COUNTS
from segkit.io import (atomic_copy_stream, atomic_write, atomic_write_bytes, read_lines,
                       write_text_keeping_old)

ADE_DIR = 'ADEChallengeData2016'
VOC_DIR = 'VOCdevkit/VOC2012'
SETS = 'ImageSets/Segmentation'
AUG = 'SegmentationClassAug'

_ADE_PAIR = re.compile(r'(?:^|/)((images/(?:training|validation)/[^/]+\.jpg)|'
                       r'(annotations/(?:training|validation)/[^/]+\.png))$')
_ADE_TXT = re.compile(r'^(?:(?:.*/)?ADEChallengeData2016/)?([^/]+\.txt)$')
_VOC_FILE = re.compile(r'(?:^|/)(?:VOC2012/)?((?:JPEGImages/[^/]+\.jpg)|'
                       r'(?:SegmentationClass/[^/]+\.png)|'
                       r'(?:ImageSets/Segmentation/[^/]+\.txt))$')
_SBD_MAT = re.compile(r'(?:^|/)dataset/cls/([^/]+)\.mat$')
_SBD_LIST = re.compile(r'(?:^|/)dataset/(train|val)\.txt$')
_NEXT_CONFIG = {'ade20k': 'configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512.py',
                'voc-aug': 'configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512.py'}


@dataclass
class PrepareResult:
    root: str  # the dataset folder the config's data_root points at
    steps: list = field(default_factory=list)  # (step, written, skipped, note)
    counts: dict = field(default_factory=dict)  # what the final checks counted
    warnings: list = field(default_factory=list)


# a file in an archive or folder: its '/'-separated path there, size, and open()
# (valid while the iterator is at it)
Member = namedtuple('Member', 'name size open')


def _is_tar(path: str) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, tarfile.TarError):
        return False


def iter_members(path: str, desc: str, progress: bool = True) -> Iterator[Member]:
    """Every regular file of an archive or folder, with a progress bar."""
    if os.path.isdir(path):
        files = sorted((os.path.relpath(os.path.join(root, n), path).replace(os.sep, '/'),
                        os.path.join(root, n)) for root, _, names in os.walk(path)
                       for n in names)
        with progress_bar(desc, len(files), progress) as bar:
            for rel, full in files:
                yield Member(rel, os.path.getsize(full), lambda full=full: open(full, 'rb'))
                bar.advance()
    elif os.path.isfile(path) and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            with progress_bar(desc, sum(i.compress_size for i in infos), progress,
                              unit='bytes') as bar:
                for info in infos:
                    yield Member(info.filename, info.file_size, lambda info=info: zf.open(info))
                    bar.advance(info.compress_size)
    elif os.path.isfile(path) and _is_tar(path):
        # stream mode: one forward pass, never seeks back in a .tgz
        with open(path, 'rb') as raw, tarfile.open(fileobj=raw, mode='r|*') as tf, \
                progress_bar(desc, os.path.getsize(path), progress, unit='bytes') as bar:
            try:
                for info in tf:
                    if info.isfile():
                        yield Member(info.name, info.size, lambda info=info: tf.extractfile(info))
                    bar.update(raw.tell())
                bar.update(raw.tell())
            except (tarfile.TarError, EOFError, OSError) as err:
                raise SegkitError(f'{path} is truncated or corrupt ({err}): '
                                  'download it again') from None
    else:
        raise SegkitError(f'{path} is neither a folder nor a .zip/.tar/.tgz archive: '
                          'pass the downloaded archive or the folder it extracts to')


def safe_rel(rel: str) -> str:
    """A relative output path with no way out of the output folder."""
    parts = rel.replace('\\', '/').split('/')
    if rel.startswith('/') or any(p in ('', '.', '..') for p in parts):
        raise SegkitError(f'refusing archive member {rel!r}: its path leaves the output '
                          'folder (a broken or hostile archive); download it again')
    return os.path.join(*parts)


def _manifest_path(out_root: str, archive: str) -> str:
    return os.path.join(out_root, '.segkit-prepared', os.path.basename(archive) + '.json')


def manifest_done(out_root: str, archive: str) -> bool:
    """Whether ``archive`` was fully processed and every output is still there, same size."""
    try:
        with open(_manifest_path(out_root, archive), encoding='utf-8') as f:
            man = json.load(f)
    except (OSError, ValueError):
        return False
    return os.path.isfile(archive) and man.get('archive_size') == os.path.getsize(archive) \
        and all(os.path.isfile(full := os.path.join(out_root, rel))
                and (size is None or os.path.getsize(full) == size)
                for rel, size in man.get('outputs', {}).items())


def write_manifest(out_root: str, archive: str, outputs: dict) -> None:
    man = dict(archive=os.path.basename(archive), archive_size=os.path.getsize(archive),
               outputs=outputs)
    atomic_write_bytes(_manifest_path(out_root, archive),
                       json.dumps(man, indent=0, sort_keys=True).encode('utf-8'))


def _junk(name: str) -> bool:
    return '__MACOSX' in name or name.rsplit('/', 1)[-1].startswith('.')


def _select(*patterns) -> Callable[[str], Optional[str]]:
    """Member name -> its output path: group 1 of the first pattern it matches."""
    def select(name: str) -> Optional[str]:
        m = None if _junk(name) else next(filter(None, (p.search(name) for p in patterns)), None)
        return m.group(1) if m else None
    return select


def _stems(folder: str, suffix: str) -> set:
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return {n[:-len(suffix)] for n in names if n.endswith(suffix) and not n.startswith('.')}


def _need_source(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise SegkitError(f'{path} does not exist: pass the downloaded {what} '
                          '(see data/README.md for where to get it)')


def _find_folder(src: str, subs: tuple, marks: tuple, error: str) -> str:
    """The first of ``src/sub`` that holds every folder in ``marks``."""
    for cand in (os.path.join(src, s) for s in subs):
        if all(os.path.isdir(os.path.join(cand, m)) for m in marks):
            return os.path.normpath(cand)
    raise SegkitError(f'{src} has no {error}')


def _copy_tree(src: str, out: str, sub: str, find: tuple, select: Callable, steps: tuple,
               what: str, progress: bool) -> tuple:
    """Copy the files ``select`` names from ``src`` (a folder found by
    ``_find_folder(src, *find)``, or an archive, extracted once: manifest) into
    ``out/sub``, but those already there; refuses (after the whole pass) when files
    there differ. Returns the step row, named ``steps[0]`` for a folder, else ``steps[1]``."""
    dest, name, is_dir = os.path.join(out, sub), os.path.basename(src), os.path.isdir(src)
    if is_dir:
        src = name = _find_folder(src, *find)
        if os.path.isdir(dest) and os.path.samefile(src, dest):
            return (steps[0], 0, 0, f'{dest} is the source: used in place')
    elif manifest_done(out, src):
        return (steps[1], 0, 0, f'{name} already extracted')
    counts, outputs, conflicts = Counter(), {}, []
    verb = 'copying' if is_dir else 'extracting'
    for m in iter_members(src, f'{verb} {os.path.basename(src)}', progress):
        rel = select(m.name)
        if not rel:
            continue
        dst = os.path.join(dest, safe_rel(rel))
        if not os.path.isfile(dst):
            with m.open() as f:
                atomic_copy_stream(dst, f)
            counts['written'] += 1
        elif os.path.getsize(dst) == m.size:
            counts['skipped'] += 1
        else:
            conflicts.append(dst)  # not ours to overwrite
            continue
        outputs[rel] = m.size
    if conflicts:
        raise SegkitError(
            f'{len(conflicts)} file(s) already in the output differ from {src} '
            f'(first: {conflicts[0]}); they were left untouched: move them away (or '
            'delete them if they are half-written) and re-run')
    if not is_dir:
        if not outputs:
            raise SegkitError(f'{src} holds no {what}')
        write_manifest(out, src, {f'{sub}/{r}': s for r, s in outputs.items()})
    return (steps[not is_dir], counts['written'], counts['skipped'], f'from {name}')


def check_ade20k(root: str, allow_partial: bool = False) -> dict:
    """{split: pairs} after checking every image has its mask and vice versa, and
    (unless ``allow_partial``) the official counts."""
    counts = {}
    for split, expected in ADE_COUNTS.items():
        imgs = _stems(os.path.join(root, 'images', split), '.jpg')
        anns = _stems(os.path.join(root, 'annotations', split), '.png')
        lone_imgs, lone_anns = sorted(imgs - anns), sorted(anns - imgs)
        if lone_imgs or lone_anns:
            what = (f'{len(lone_imgs)} image(s) without a mask (first: {lone_imgs[0]}.jpg)'
                    if lone_imgs else
                    f'{len(lone_anns)} mask(s) without an image (first: {lone_anns[0]}.png)')
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
    result = PrepareResult(root=os.path.join(out, ADE_DIR))
    result.steps.append(_copy_tree(
        src, out, ADE_DIR,
        (('', ADE_DIR), ('images', 'annotations'),
         f'images/ and annotations/ folders (nor an {ADE_DIR} folder with them): pass '
         'ADEChallengeData2016.zip or the folder it extracts to'),
        _select(_ADE_PAIR, _ADE_TXT), ('copy', 'extract'),
        'images/ or annotations/ files: is it ADEChallengeData2016.zip?', progress))
    result.counts = {f'{k} pairs': v for k, v in check_ade20k(result.root, allow_partial).items()}
    return result


def _read_png(path: str) -> np.ndarray:
    """Class indices of a label PNG; a palette PNG gives its indices, as mmseg reads it."""
    with Image.open(path) as img:
        return np.array(img)


def _sbd_segmentation(mat: bytes) -> np.ndarray:
    """``GTcls.Segmentation`` of an SBD ``cls/*.mat`` file."""
    from scipy.io import loadmat
    data = loadmat(io.BytesIO(mat))
    if 'GTcls' not in data:
        raise ValueError('no GTcls struct (is this an SBD dataset/cls/*.mat file?)')
    seg = np.asarray(data['GTcls']['Segmentation'][0, 0])
    if seg.ndim != 2:
        raise ValueError(f'GTcls.Segmentation has shape {seg.shape}, expected H x W')
    return seg


def _index_png_chunk(task) -> list:
    """(out_dir, [(name, VOC palette PNG path or SBD .mat bytes)]) -> index PNGs
    in out_dir: [(name, status, detail)], status written (detail: its size),
    skipped / conflict (an equal / different file is there) or error."""
    out_dir, items = task
    done = []
    for name, src in items:
        try:
            labels = _read_png(src) if isinstance(src, str) else _sbd_segmentation(src)
            dst = os.path.join(out_dir, name + '.png')
            if os.path.isfile(dst):
                same = np.array_equal(_read_png(dst), labels)
                done.append((name, 'skipped' if same else 'conflict', dst))
            else:  # mode L, not palette: every reader (cv2 expands palettes) gets the indices
                if labels.ndim != 2:
                    raise ValueError(f'label map must be 2-D, got shape {labels.shape}')
                if labels.size and (labels.min() < 0 or labels.max() > 255):
                    raise ValueError('label values must fit in 0..255, got '
                                     f'{labels.min()}..{labels.max()}')
                img = Image.fromarray(labels.astype(np.uint8))
                atomic_write(dst, lambda tmp: img.save(tmp, format='PNG'))
                done.append((name, 'written', os.path.getsize(dst)))
        except Exception as err:  # noqa: BLE001 - reported per file
            done.append((name, 'error', f'{type(err).__name__}: {err}'))
    return done


def _convert(tasks, desc: str, total: Optional[int], workers: int, progress: bool,
             what: str) -> tuple:
    """Run ``_index_png_chunk`` over ``tasks``: (status counts, {name: size written},
    conflicting paths); refuses when any file could not be converted."""
    counts, written, conflicts, errors = Counter(), {}, [], []
    with progress_bar(desc, total, progress and total is not None) as bar:
        for done in parallel_map(_index_png_chunk, tasks, workers):
            for name, status, detail in done:
                counts[status] += 1
                if status == 'written':
                    written[name] = detail
                elif status != 'skipped':
                    (conflicts if status == 'conflict' else errors).append((name, detail))
            bar.advance(len(done))
    if errors:
        name, detail = errors[0]
        raise SegkitError(f'{len(errors)} {what} could not be converted (first: {name}: '
                          f'{detail}): the download is corrupt; download it again')
    return counts, written, [path for _, path in conflicts]


def _voc_masks_to_aug(root: str, workers: int, progress: bool, result: PrepareResult) -> set:
    """VOC's own masks as indices into AUG; returns their names."""
    src_dir = os.path.join(root, 'SegmentationClass')
    names = sorted(_stems(src_dir, '.png'))
    tasks = [(os.path.join(root, AUG), [(n, os.path.join(src_dir, n + '.png')) for n in c])
             for c in chunked(names, 64)]
    counts, _, conflicts = _convert(tasks, f'VOC masks -> {AUG}', len(names), workers,
                                    progress, 'VOC SegmentationClass masks')
    if conflicts:
        result.warnings.append(
            f'{len(conflicts)} mask(s) already in {AUG} differ from VOC2012 SegmentationClass '
            f'(first: {conflicts[0]}); left untouched, so VOC does not take precedence there: '
            f'move {AUG} away and re-run to rebuild it')
    result.steps.append(('VOC masks', counts['written'], counts['skipped'],
                         'VOC masks as class indices'))
    return set(names)


def _sbd_to_aug(sbd: str, out: str, root: str, voc_names: set, workers: int,
                progress: bool, result: PrepareResult) -> dict:
    """SBD's masks into AUG but where VOC has one; returns SBD's {'train': names, 'val': ...}."""
    out_dir = os.path.join(root, AUG)
    lists_rel = {s: f'{SETS}/sbd_{s}.txt' for s in ('train', 'val')}
    if manifest_done(out, sbd):
        result.steps.append(('SBD masks', 0, 0, f'{os.path.basename(sbd)} already converted'))
        return {s: read_lines(os.path.join(root, p)) for s, p in lists_rel.items()}
    folder, source, prefix = sbd, os.path.basename(sbd), ''
    if os.path.isdir(sbd):  # its members named as in the archive
        folder = source = _find_folder(
            sbd, ('', 'dataset', 'benchmark_RELEASE/dataset'), ('cls',),
            'cls/ folder (nor dataset/cls/ or benchmark_RELEASE/dataset/cls/): pass '
            'benchmark.tgz or its benchmark_RELEASE folder')
        prefix = 'dataset/'
    lists, skipped, outputs = {}, Counter(), {}

    def mats():
        """(name, .mat bytes) to convert: VOC's own mask wins; a converted one is kept."""
        for m in iter_members(folder, f'converting {os.path.basename(folder)}', progress):
            name = prefix + m.name
            mat, lst = _SBD_MAT.search(name), _SBD_LIST.search(name)
            if lst:
                with m.open() as f:
                    lists[lst.group(1)] = f.read().decode('utf-8').split()
            if not mat or _junk(name):
                continue
            stem, dst = mat.group(1), os.path.join(out_dir, mat.group(1) + '.png')
            if stem in voc_names:
                skipped['voc'] += 1
            elif os.path.isfile(dst):
                skipped['done'] += 1
                outputs[stem] = os.path.getsize(dst)
            else:
                with m.open() as f:
                    yield stem, f.read()

    tasks = ((out_dir, c) for c in chunked(mats(), 32))
    counts, written, _ = _convert(tasks, f'SBD .mat -> {AUG}', None, workers, progress,
                                  'SBD cls/*.mat files')
    outputs.update(written)
    for split, rel in lists_rel.items():
        if split not in lists:
            raise SegkitError(f"{sbd} has no dataset/{split}.txt: is it SBD's benchmark.tgz "
                              '(or its extracted folder)? download it again')
        write_text_keeping_old(os.path.join(root, rel), ''.join(n + '\n' for n in lists[split]))
    if os.path.isfile(sbd):
        write_manifest(out, sbd, {**{f'{VOC_DIR}/{AUG}/{n}.png': s for n, s in outputs.items()},
                                  **{f'{VOC_DIR}/{p}': None for p in lists_rel.values()}})
    result.steps.append(('SBD masks', counts['written'], skipped['done'],
                         f"from {source}; {skipped['voc']} name(s) keep VOC's mask"))
    return lists


def check_voc_aug(root: str, train_aug: list, val: list, allow_partial: bool) -> dict:
    for names, seg_sub, what in ((train_aug, AUG, 'train_aug'),
                                 (val, 'SegmentationClass', 'val')):
        for sub, suffix in (('JPEGImages', '.jpg'), (seg_sub, '.png')):
            have = _stems(os.path.join(root, sub), suffix)
            missing = [n for n in names if n not in have]
            if missing:
                raise SegkitError(
                    f'{len(missing)} {what} name(s) have no {sub}/{missing[0]}{suffix} '
                    f'(in {root}): the VOC or SBD download is incomplete; run '
                    'prepare_data.py voc-aug again on the complete archives')
    for names, expected, what in ((train_aug, TRAIN_AUG_COUNT, 'train_aug.txt'),
                                  (val, VOC_COUNTS['val'], 'val.txt')):
        if len(names) != expected and not allow_partial:
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
    result.steps.append(_copy_tree(
        voc, out, VOC_DIR,
        (('', 'VOC2012', VOC_DIR), ('JPEGImages',),
         'JPEGImages folder (nor VOC2012/ or VOCdevkit/VOC2012/ with one): pass '
         'VOCtrainval_11-May-2012.tar or its VOCdevkit folder'),
        _select(_VOC_FILE), ('VOC2012', 'VOC2012'),
        'VOC2012/JPEGImages files: is it VOCtrainval_11-May-2012.tar?', progress))
    voc_lists = {}
    for split in ('train', 'val'):
        path = os.path.join(root, SETS, f'{split}.txt')
        if not os.path.isfile(path):
            raise SegkitError(f'{path} does not exist: {voc} is not a complete VOC2012 '
                              'trainval download; download VOCtrainval_11-May-2012.tar again')
        voc_lists[split] = read_lines(path)
    voc_names = _voc_masks_to_aug(root, workers, progress, result)
    sbd_lists = _sbd_to_aug(sbd, out, root, voc_names, workers, progress, result)
    # one list: SBD train + SBD val + VOC train, minus VOC val (mmseg's converter
    # writes trainaug.txt and aug.txt = that minus VOC train, for concatenation)
    val = voc_lists['val']
    train_aug = sorted(set(sbd_lists['train'] + sbd_lists['val'] + voc_lists['train']) - set(val))
    result.counts = check_voc_aug(root, train_aug, val, allow_partial)
    status = write_text_keeping_old(os.path.join(root, SETS, 'train_aug.txt'),
                                    ''.join(n + '\n' for n in train_aug))
    result.steps.append(('train_aug.txt', int(status != 'unchanged'),
                         int(status == 'unchanged'), status))
    return result


def print_result(result: PrepareResult) -> None:
    from rich.console import Console
    steps = table(f'prepared {result.root}', ('step', 'written', 'skipped', 'note'),
                  right=('written', 'skipped'))
    for step, written, skipped, note in result.steps:
        steps.add_row(step, f'{written:,}', f'{skipped:,}', note)
    console = Console()
    console.print(steps)
    for key, value in result.counts.items():
        console.print(f'{key}: {value:,}')
    for w in result.warnings:
        console.print(f'[yellow]warning:[/] {w}')


def main(dataset: str, src: Optional[str] = None, voc: Optional[str] = None,
         sbd: Optional[str] = None, out: str = 'data', allow_partial: bool = False,
         workers: Optional[int] = None) -> int:
    result = (prepare_ade20k(src, out, allow_partial) if dataset == 'ade20k' else
              prepare_voc_aug(voc, sbd, out, allow_partial, workers))
    print_result(result)
    print(f'next: {shell_command(["python", "tools/validate_dataset.py", _NEXT_CONFIG[dataset]])}')
    return 0
