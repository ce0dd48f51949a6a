"""Check a config's dataset the way training reads it (built through mmseg's registry,
so paths, suffixes and label settings are the config's own); behind
``tools/validate_dataset.py`` and preflight. A :class:`Finding` says in one line what is wrong
and how to fix it; all are errors but no_labels, and orphan_mask under an ann_file.
"""
from __future__ import annotations

import collections
import copy
import os
import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Optional, Sequence

import numpy as np

from segkit.data.parallel import chunked, default_workers, parallel_map, progress_bar, table
from segkit.engine.config import dataset_paths, load_config, split_datasets
from segkit.errors import SegkitError, one_line

ERROR, WARNING = 'error', 'warning'
_EXIF_SWAPS = (5, 6, 7, 8)  # orientations that transpose the image


@dataclass
class Finding:
    kind: str
    path: str
    message: str
    severity: str = ERROR
    split: str = ''
    fraction: float = 1.0  # share of the mask's pixels affected (ranks "worst")

    def __str__(self) -> str:
        where = f'{self.split}: ' if self.split else ''
        return f'{self.severity} [{self.kind}] {where}{self.path}: {self.message}'


@dataclass
class PairStats:
    findings: list
    hist: Optional[np.ndarray] = None  # (256,) pixels per mapped label; None: unread


def label_lut(reduce_zero_label: bool, label_map: Optional[dict] = None) -> np.ndarray:
    """raw uint8 value -> the label mmseg's LoadAnnotations produces."""
    lut = np.arange(256, dtype=np.int64)
    if reduce_zero_label:  # 0 -> 255, v -> v - 1, raw 255 stays ignore
        lut = np.concatenate(([255], lut[:254], [255]))
    return np.array([(label_map or {}).get(v, v) for v in lut.tolist()], dtype=np.int64)


@contextmanager
def _open_strict(path: str):
    """PIL's image of ``path``; a truncated file raises when decoded."""
    from PIL import Image, ImageFile
    old, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with Image.open(path) as img:
            yield img
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def _cv2_decode(path: str, flags: str):
    import cv2
    return cv2.imdecode(np.fromfile(path, np.uint8), getattr(cv2, flags))


def _image_size(path: str, exif: bool) -> tuple:
    """(W, H) as the loader returns it; decodes every byte."""
    from PIL import UnidentifiedImageError
    try:
        with _open_strict(path) as img:
            img.load()
            w, h = img.size
            if exif and img.getexif().get(0x0112, 1) in _EXIF_SWAPS:
                w, h = h, w  # mmcv's 'color' loading applies EXIF rotation
            return w, h
    except UnidentifiedImageError:
        arr = _cv2_decode(path, 'IMREAD_COLOR')  # a format PIL does not know (cv2 is the default)
        if arr is None:
            raise
        return arr.shape[1], arr.shape[0]


def _hist256(mask: np.ndarray) -> np.ndarray:
    """Pixels per value of a uint8 mask. cv2's histogram is ~5x np.bincount;
    its float32 counts are exact below 2**24 pixels."""
    if mask.size < 2 ** 24:
        import cv2
        return cv2.calcHist([np.ascontiguousarray(mask)], [0], None, [256],
                            [0, 256]).ravel().astype(np.int64)
    return np.bincount(mask.ravel(), minlength=256)


def _values(vals) -> str:
    vals = [int(v) for v in vals]
    return ', '.join(map(str, vals[:8])) + (f', ... ({len(vals)} values)' if len(vals) > 8 else '')


def inspect_pair(img_path: str, seg_path: Optional[str], num_classes: int, ignore_index: int = 255,
                 reduce_zero_label: bool = False, label_map: Optional[dict] = None, *,
                 exif: bool = True, mask_backend: str = 'pillow') -> PairStats:
    """Findings for one pair (``seg_path=None``: image only) plus its 256-bin
    histogram of the labels the loss sees (after reduce_zero_label and label_map)."""
    out: list = []

    def add(kind, path, message, severity=ERROR, fraction=1.0):
        out.append(Finding(kind, path, message, severity, fraction=fraction))

    size = None
    if not os.path.isfile(img_path):
        neither = seg_path is not None and not os.path.isfile(seg_path)
        add('missing_image', img_path, f'image does not exist{" (nor its mask)" if neither else ""}'
            ': fix the ann_file line or data_root / data_prefix.img_path, or add the image')
        if neither:
            return PairStats(out)  # one finding for a name that is not there at all
    else:
        try:
            size = _image_size(img_path, exif)
        except Exception as err:  # noqa: BLE001 - any decoder error is the finding
            add('unreadable_image', img_path, f'image cannot be decoded ({one_line(err)}): '
                'the file is truncated or corrupt; extract or download it again')
    if seg_path is None:
        return PairStats(out)
    if not os.path.isfile(seg_path):
        add('missing_mask', seg_path, f'image {os.path.basename(img_path)} has no mask '
            'here: add the mask, or remove the image (and its ann_file line)')
        return PairStats(out)
    try:  # the array mmseg's LoadAnnotations gets before the uint8 cast
        if mask_backend == 'cv2':
            mask = _cv2_decode(seg_path, 'IMREAD_UNCHANGED')
            if mask is None:
                raise ValueError('cv2 cannot decode it')
            mode = f'cv2 {mask.dtype}'
        else:
            with _open_strict(seg_path) as img:
                mask, mode = np.array(img), img.mode
    except Exception as err:  # noqa: BLE001
        add('unreadable_mask', seg_path, f'mask cannot be decoded ({one_line(err)}): the '
            'file is truncated or corrupt; extract, convert or download it again')
        return PairStats(out)

    mask = mask.squeeze()  # as mmseg does
    if mask.ndim != 2:
        chans = mask.shape[-1] if mask.ndim == 3 else mask.ndim
        equal = mask.ndim == 3 and all(np.array_equal(mask[..., 0], mask[..., c])
                                       for c in range(1, min(chans, 3)))
        fix = ('its channels are equal: save it as a single-channel PNG '
               '(PIL: Image.open(p).convert("L"))' if equal else
               'map each colour to its class index and save a mode L PNG')
        cv2_hint = (" (imdecode_backend=cv2 expands palette PNGs to colours: use 'pillow')"
                    if mask_backend == 'cv2' else '')
        add('mask_channels', seg_path, f'mask has {chans} channels ({mode}){cv2_hint}; mmseg '
            f'needs one channel of class indices: {fix}')
        return PairStats(out)
    mh, mw = mask.shape
    if size is not None and (mw, mh) != tuple(size):
        hint = (' (the image has an EXIF rotation the loader applies)'
                if exif and (mh, mw) == tuple(size) else '')
        add('size_mismatch', seg_path, f'mask is {mw}x{mh} but its image is '
            f'{size[0]}x{size[1]} (WxH){hint}: a mask must match its image pixel for '
            'pixel; fix the pairing or re-export the mask at the image size')
    if mask.dtype not in (bool, np.uint8) and mask.size and (mask.max() > 255 or mask.min() < 0):
        add('mask_16bit', seg_path, f'{mask.dtype} mask with values up to {int(mask.max())}: '
            'mmseg casts masks to uint8, so values above 255 wrap around; store '
            'class indices 0..255 in an 8-bit PNG')
    raw = _hist256(mask.astype(np.uint8, copy=False))
    lut = label_lut(reduce_zero_label, label_map)
    hist = np.zeros(256, dtype=np.int64)
    np.add.at(hist, lut, raw)
    present_raw = np.flatnonzero(raw)

    if set(present_raw.tolist()) == {0, 255}:
        what = ('with reduce_zero_label both values become ignore, so it trains on nothing'
                if reduce_zero_label else 'so its foreground is never learnt')
        add('binary_mask', seg_path, f'mask holds only 0 and 255 (a 0/255 binary mask): 255 is '
            f'the ignore index, {what}; store class indices instead (e.g. 255 -> 1: mask // 255)')
        return PairStats(out, hist)
    bad = [v for v in np.flatnonzero(hist) if v >= num_classes and v != ignore_index]
    if bad:
        frac = float(hist[bad].sum()) / (int(raw.sum()) or 1)
        raws = [r for r in present_raw if lut[r] in bad]
        how = f' (raw {_values(raws)}, minus 1 by reduce_zero_label)' if reduce_zero_label else ''
        hint = ('; if raw 0 means "unlabelled", set reduce_zero_label=True'
                if not reduce_zero_label and max(bad) == num_classes and raw[0] > 0 else '')
        add('label_out_of_range', seg_path, f'{frac:.1%} of the pixels have labels '
            f'{_values(bad)}{how}, outside 0..{num_classes - 1} (num_classes={num_classes}) '
            f'and not the ignore index {ignore_index}: fix the masks, or num_classes / '
            f'reduce_zero_label in the config{hint}', fraction=frac)
    elif hist[:num_classes].sum() == 0:
        add('no_labels', seg_path, f'every pixel is the ignore index {ignore_index}'
            f'{" (raw 0 with reduce_zero_label)" if reduce_zero_label else ""}: the image '
            'adds nothing to training; check it is the right mask', WARNING)
    return PairStats(out, hist)


_zeros = partial(np.zeros, 256, np.int64)


@dataclass
class SplitReport:
    split: str  # 'train', 'val', 'test', or 'train[1]' inside a ConcatDataset
    dataset_type: str = ''
    img_dir: str = ''
    seg_dir: Optional[str] = None
    ann_file: str = ''
    reduce_zero_label: bool = False
    total: int = 0  # pairs in the dataset
    checked: int = 0  # pairs checked (all, or the sample)
    pixels: np.ndarray = field(default_factory=_zeros)
    images: np.ndarray = field(default_factory=_zeros)
    # labelled pixels of the images a label appears in (median-frequency weights)
    present: np.ndarray = field(default_factory=_zeros)
    findings: list = field(default_factory=list)


@dataclass
class Report:
    num_classes: int
    class_names: list
    ignore_index: int
    splits: list = field(default_factory=list)
    config_findings: list = field(default_factory=list)

    @property
    def findings(self) -> list:
        return self.config_findings + [f for s in self.splits for f in s.findings]

    @property
    def errors(self) -> list:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def ok(self) -> bool:
        return not self.errors

    def _sum(self, attr: str, split: str) -> np.ndarray:
        """Over the split's datasets ('train' sums 'train[0]', 'train[1]', ...)."""
        return sum((getattr(s, attr) for s in self.splits if s.split.split('[')[0] == split),
                   _zeros())

    def class_pixels(self, split: str = 'train') -> np.ndarray:
        return self._sum('pixels', split)[:self.num_classes]

    def class_images(self, split: str = 'train') -> np.ndarray:
        return self._sum('images', split)[:self.num_classes]

    def class_present_pixels(self, split: str = 'train') -> np.ndarray:
        return self._sum('present', split)[:self.num_classes]

    def ignored_pixels(self, split: str = 'train') -> int:
        return int(self._sum('pixels', split)[self.ignore_index])


def _pipeline_step(pipeline, name: str) -> dict:
    return next((s for s in pipeline or [] if isinstance(s, dict)
                 and str(s.get('type', '')).split('.')[-1] == name), {})


def head_cfgs(cfg) -> list:
    head = (cfg.get('model') or {}).get('decode_head')
    return [] if head is None else list(head) if isinstance(head, (list, tuple)) else [head]


def _build(cfg, label: str, leaf) -> tuple:
    """(dataset or None, SplitReport, findings) for one leaf dataset cfg."""
    from mmseg.registry import DATASETS
    rep = SplitReport(split=label, dataset_type=str(leaf.get('type', '')))
    paths = dataset_paths(leaf)
    for key in ('img_path', 'seg_map_path', 'ann_file'):
        path = paths.get(key)
        if path and not (os.path.isfile(path) if key == 'ann_file' else os.path.isdir(path)):
            return None, rep, [Finding('dataset', path, f'{key} does not exist: prepare the data '
                                       '(data/README.md: python tools/prepare_data.py) or fix '
                                       'data_root / data_prefix / ann_file', split=label)]
    # we read the files ourselves: no pipeline
    ds_cfg = {**copy.deepcopy(leaf), 'pipeline': [], 'serialize_data': False, 'lazy_init': False}
    try:
        from mmengine.registry import init_default_scope
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        if DATASETS.get(rep.dataset_type) is None and cfg.get('custom_imports'):
            from mmengine.utils import import_modules_from_strings
            import_modules_from_strings(**cfg['custom_imports'])
        ds = DATASETS.build(ds_cfg)
    except Exception as err:  # noqa: BLE001 - mmseg/mmengine raise many kinds
        return None, rep, [Finding('dataset', paths.get('data_root') or label,
                                   f'the dataset cannot be built ({one_line(err)}): fix '
                                   'the dataset config', split=label)]
    rep.img_dir = ds.data_prefix.get('img_path') or ''
    rep.seg_dir = ds.data_prefix.get('seg_map_path')
    rep.ann_file = ds.ann_file or ''
    rep.reduce_zero_label = bool(ds.reduce_zero_label)
    return ds, rep, []


def _classes_of_cfg(leaf) -> list:
    """Class names a dataset cfg states, or its type's defaults (it did not build)."""
    from mmseg.registry import DATASETS
    classes = (leaf.get('metainfo') or {}).get('classes')
    if not classes:
        try:
            classes = DATASETS.get(str(leaf.get('type', ''))).METAINFO.get('classes')
        except Exception:  # noqa: BLE001 - an unknown scope or type
            classes = None
    return list(classes or [])


def _stems(root, suffix) -> dict:
    """{path under root less the suffix: path} of its files ending in ``suffix``."""
    found = {}
    for d, _, names in os.walk(root):
        for n in names:
            if n.endswith(suffix) and not n.startswith('.'):
                found[os.path.relpath(os.path.join(d, n), root)[:-len(suffix)]] = os.path.join(d, n)
    return found


def _orphans(img_dir: str, seg_dir: str, img_suffix: str, seg_suffix: str,
             with_ann_file: bool, label: str) -> tuple[list, str]:
    """Masks (``*seg_suffix`` under seg_dir) whose image is not under img_dir, and ''
    or the suffix setting the names on disk ask for: when at least half the masks
    with no image are named IMAGE_mask.png, seg_map_suffix='_mask.png'."""
    masks = _stems(seg_dir, seg_suffix)
    images = _stems(img_dir, img_suffix) if os.path.isdir(img_dir) else {}
    hint = ''
    for names, bases, what, like, key, suffix in (
            (masks, images, 'masks', 'IMAGE', 'seg_map_suffix', seg_suffix),
            (images, masks, 'images', 'MASK', 'img_suffix', img_suffix)):
        alone = [n for n in names if n not in bases]
        tails = collections.Counter()
        for n in alone:
            cut = next((i for i in range(len(n) - 1, 0, -1) if n[i] in '_-.' and n[:i] in bases), 0)
            if cut:
                tails[n[cut:]] += 1
        tail, count = (tails.most_common(1) or [('', 0)])[0]
        if count and count * 2 >= len(alone):
            hint = (f"{what} are named like {like}{tail}{suffix}: set {key}="
                    f"'{tail}{suffix}' in the dataset config (now '{suffix}')")
            break
    fix = hint or ('add the image or move the mask out (a different image suffix or name '
                   'also does this)')
    return [Finding('orphan_mask', path, f'mask has no image {stem}{img_suffix} in {img_dir}: '
                    f'{fix}', WARNING if with_ann_file else ERROR, split=label)
            for stem, path in sorted(masks.items()) if stem not in images], hint


def _check_chunk(task) -> tuple:
    index, params, pairs = task
    pixels, images, present, findings = _zeros(), _zeros(), _zeros(), []
    for img, seg in pairs:
        st = inspect_pair(img, seg, **params)
        findings += st.findings
        if st.hist is not None:
            pixels += st.hist
            images += st.hist > 0
            present[st.hist > 0] += int(st.hist[:params['num_classes']].sum())
    return index, len(pairs), pixels, images, present, findings


def validate(cfg, splits: Sequence[str] = ('train', 'val'), sample: Optional[int] = None,
             workers: Optional[int] = None, progress: bool = True, seed: int = 0) -> Report:
    """Check every pair of the config's ``splits`` (see module docstring)."""
    workers = workers or default_workers()
    splits = [x for s in ([splits] if isinstance(splits, str) else splits)
              for x in (['train', 'val', 'test'] if s == 'all' else [s])]
    built = [(leaf,) + _build(cfg, label, leaf)
             for label, leaf in split_datasets(cfg, tuple(splits))]
    if not built:
        raise SegkitError(f'the config has no {"/".join(splits)}_dataloader '
                          'dataset: pick a split it defines (--split)')

    datasets = [ds for _, ds, _, _ in built if ds is not None]
    classes = (list(datasets[0].metainfo.get('classes') or []) if datasets else
               _classes_of_cfg(built[0][0]))
    heads = head_cfgs(cfg)
    config_findings = []
    if heads:
        num_classes = int(heads[-1]['num_classes'])
        if classes and len(classes) != num_classes:
            config_findings.append(Finding('config', 'model.decode_head.num_classes', f'is '
                                           f'{num_classes} but the dataset has {len(classes)} '
                                           'classes: make them agree'))
    elif classes:
        num_classes = len(classes)
    else:
        raise SegkitError('cannot tell the number of classes: the config has no '
                          'model.decode_head.num_classes and its dataset could not be '
                          'built (see the errors above) or has no metainfo classes')
    names = classes + [f'class {i}' for i in range(len(classes), num_classes)]
    ignore_index = int(getattr(datasets[0], 'ignore_index', 255)) if datasets else 255
    head_ignore = heads[-1].get('ignore_index') if heads else None
    if head_ignore is not None and int(head_ignore) != ignore_index:
        config_findings.append(Finding('config', 'model.decode_head.ignore_index', f'is '
                                       f'{head_ignore} but the dataset ignores {ignore_index}: '
                                       'make them agree', WARNING))
    report = Report(num_classes, names[:num_classes], ignore_index,
                    config_findings=config_findings)

    rng = random.Random(seed)
    tasks, scanned, hints = [], set(), {}
    for index, (leaf, ds, rep, found) in enumerate(built):
        report.splits.append(rep)
        rep.findings += found
        if ds is None:
            continue
        load_ann = _pipeline_step(leaf.get('pipeline'), 'LoadAnnotations')
        load_img = _pipeline_step(leaf.get('pipeline'), 'LoadImageFromFile')
        if load_ann.get('reduce_zero_label') is not None and \
                bool(load_ann['reduce_zero_label']) != rep.reduce_zero_label:
            rep.findings.append(Finding(
                'config', f'{rep.split} pipeline LoadAnnotations', f'reduce_zero_label='
                f'{load_ann["reduce_zero_label"]} but the dataset has {rep.reduce_zero_label} '
                '(mmseg stops at the first sample): make them agree', split=rep.split))
        rep.total = len(ds)
        if rep.total == 0:
            where = (f'ann_file {rep.ann_file} lists no names' if rep.ann_file else
                     f'{rep.img_dir} holds no *{ds.img_suffix} files')
            rep.findings.append(Finding(
                'empty_split', rep.img_dir or rep.split, f'the {rep.split} split has no '
                f'image/mask pairs ({where}): check data_root, data_prefix, img_suffix and '
                'ann_file (data/README.md)', split=rep.split))
            continue
        idx = range(rep.total)
        if sample is not None and sample < rep.total:
            idx = sorted(rng.sample(idx, sample))
        infos = [ds.get_data_info(i) for i in idx]
        pairs = [(i['img_path'], i.get('seg_map_path')) for i in infos]
        rep.checked = len(pairs)
        params = dict(num_classes=num_classes, ignore_index=ignore_index,
                      reduce_zero_label=rep.reduce_zero_label,
                      label_map=infos[0].get('label_map') if infos else None,
                      exif=load_img.get('color_type', 'color') in ('color', 'grayscale'),
                      mask_backend=load_ann.get('imdecode_backend', 'pillow'))
        size = max(4, min(64, len(pairs) // (workers * 4) or 1))
        tasks += [(index, params, c) for c in chunked(pairs, size)]
        key = (rep.img_dir, rep.seg_dir, ds.img_suffix, ds.seg_map_suffix)
        if rep.seg_dir and os.path.isdir(rep.seg_dir) and key not in scanned:
            scanned.add(key)
            orphans, hints[index] = _orphans(rep.img_dir, rep.seg_dir, ds.img_suffix,
                                             ds.seg_map_suffix, bool(rep.ann_file), rep.split)
            rep.findings += orphans

    total = sum(len(t[2]) for t in tasks)
    with progress_bar(f'checking {total:,} pairs ({workers} workers)', total, progress) as bar:
        for index, n, pixels, images, present, findings in parallel_map(
                _check_chunk, tasks, workers):
            rep = report.splits[index]
            rep.pixels += pixels
            rep.images += images
            rep.present += present
            for f in findings:
                f.split = rep.split
                if f.kind == 'missing_mask' and hints.get(index):
                    f.message = f'mask {os.path.basename(f.path)} does not exist: {hints[index]}'
            rep.findings += findings
            bar.advance(n)
    return report


def _pct(part: float, whole: float) -> str:
    return f'{100.0 * part / whole:.2f}%' if whole else '-'


def print_report(report: Report, worst: int = 20, console=None) -> None:
    from rich.console import Console
    console = console or Console(width=max(120, Console().width))
    cols = ('split', 'dataset', 'pairs', 'checked', 'errors', 'warnings', 'labelled px',
            'ignored px')
    summary = table('splits', cols, right=cols[2:])
    for s in report.splits:
        errors = sum(f.severity == ERROR for f in s.findings)
        summary.add_row(s.split, s.dataset_type, f'{s.total:,}', f'{s.checked:,}', str(errors),
                        str(len(s.findings) - errors),
                        f'{int(s.pixels[:report.num_classes].sum()):,}',
                        _pct(s.pixels[report.ignore_index], int(s.pixels.sum())))
    console.print(summary)

    if report.findings:
        kinds = table('findings by kind', ('kind', 'severity', 'count', 'first'), right=('count',))
        by_kind: dict = {}
        for f in sorted(report.findings, key=lambda f: (f.severity != ERROR, f.kind)):
            by_kind.setdefault((f.kind, f.severity), []).append(f)
        for (kind, sev), fs in by_kind.items():
            kinds.add_row(kind, sev, f'{len(fs):,}', f'{fs[0].path}: {fs[0].message}')
        console.print(kinds)

    counted = [s for s in report.splits if s.checked]
    if counted:
        cols = ['id', 'class'] + [f'{s.split} {what}' for s in counted for what in ('px', 'imgs')]
        classes = table('pixels and images per class', cols, right=cols[:1] + cols[2:])
        rows = [(str(c), str(name), c) for c, name in enumerate(report.class_names)]
        for cid, name, c in rows + [('', f'ignore ({report.ignore_index})', report.ignore_index)]:
            classes.add_row(cid, name, *[cell for s in counted for cell in (
                _pct(s.pixels[c], int(s.pixels.sum())), f'{int(s.images[c]):,}')])
        console.print(classes)
        unseen = [str(report.class_names[c]) for c in range(report.num_classes)
                  if all(s.pixels[c] == 0 for s in counted)]
        if unseen:
            console.print(f'[yellow]classes with no pixels in any split checked:[/] '
                          f'{", ".join(unseen[:20])}{" ..." if len(unseen) > 20 else ""}')

    if report.findings and worst:
        worst_files = table(f'worst files (of {len(report.findings):,} findings)',
                            ('severity', 'kind', 'split', 'file', 'what is wrong / how to fix'),
                            overflow='fold')
        # errors before warnings, then by the share of the mask affected
        for f in sorted(report.findings, key=lambda f: (f.severity != ERROR, -f.fraction,
                                                        f.kind, f.path))[:worst]:
            worst_files.add_row(f.severity, f.kind, f.split, f.path, f.message)
        console.print(worst_files)
    n_err = len(report.errors)
    verdict = '[red]FAIL[/]' if n_err else '[green]OK[/]'
    console.print(f'{verdict}: {n_err:,} error(s), {len(report.findings) - n_err:,} warning(s)')


def main(config: str, split: str = 'all', workers: Optional[int] = None,
         sample: Optional[int] = None, cfg_options: Optional[dict] = None,
         worst: int = 20) -> int:
    cfg = load_config(config, cfg_options)
    report = validate(cfg, split, sample=sample, workers=workers)
    print_report(report, worst)
    return 1 if report.errors else 0
