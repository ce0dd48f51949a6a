"""Data-pipeline benchmark: the config's *train* pipeline per transform, timed as one
DataLoader worker runs it (one torch thread, OpenCV threads off), on the dataset's files
or synthetic ones of its typical size and layout (textured JPEGs decode like photos)."""
from __future__ import annotations

import argparse
import contextlib
import copy
import inspect
import itertools
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from segkit.bench import print_table, write_json
from segkit.engine.cli import add_cfg_options
from segkit.engine.config import dataset_paths, iter_datasets, load_config
from segkit.errors import SegkitError

# dataset type -> (h, w) of a typical image
TYPICAL_SIZE = {'ADE20KDataset': (512, 683), 'PascalVOCDataset': (375, 500),
                'PascalContextDataset': (375, 500), 'PascalContextDataset59': (375, 500),
                'CityscapesDataset': (1024, 2048)}
# a GPU's training speed to feed when none is measured (img/s per H100, bf16 recipe):
# deliberately generous guesses; pass --gpu-img-per-s or --train-json with a number
# measured by tools/benchmark.py on the training server
ASSUMED_GPU_IMG_PER_S = {'mask2former': 40.0, 'segformer': 150.0}


def _leaf_dataset(cfg) -> dict:
    leaves = list(iter_datasets(cfg.train_dataloader.get('dataset')))
    if not leaves:
        raise SegkitError('the config has no train_dataloader.dataset')
    return copy.deepcopy(leaves[0][1])


def _synthetic_pair(rng, h: int, w: int, num_classes: int, ignore_borders: bool):
    import cv2
    low = rng.integers(0, 256, (max(h // 48, 2), max(w // 48, 2), 3)).astype(np.uint8)
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    detail = cv2.resize(rng.integers(-40, 40, (h // 4, w // 4, 3)).astype(np.float32),
                        (w, h), interpolation=cv2.INTER_LINEAR)
    img = img + detail.astype(np.int16) + rng.integers(-12, 12, (h, w, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    coarse = rng.integers(0, num_classes, (max(h // 40, 2), max(w // 40, 2))).astype(np.uint8)
    label = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_NEAREST)
    if ignore_borders:  # VOC draws 255 on object boundaries
        edges = cv2.morphologyEx(label, cv2.MORPH_GRADIENT, np.ones((5, 5), np.uint8)) > 0
        label[edges] = 255
    return img, label


def write_synthetic_dataset(cfg, root: str, num_images: int) -> dict:
    """Write ``num_images`` pairs under ``root``; returns the train dataset cfg pointed there."""
    import cv2
    from mmseg.registry import DATASETS

    from segkit.bench.synthetic import num_classes_of
    ds = _leaf_dataset(cfg)
    cls = DATASETS.get(ds['type'])
    if cls is None:
        raise SegkitError(f"dataset type {ds['type']!r} is not registered")
    defaults = {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items()}
    img_suffix = ds.get('img_suffix', defaults.get('img_suffix', '.jpg'))
    seg_suffix = ds.get('seg_map_suffix', defaults.get('seg_map_suffix', '.png'))
    prefix = {**(defaults.get('data_prefix') or {}), **(ds.get('data_prefix') or {})}
    h, w = TYPICAL_SIZE.get(ds['type'], tuple(cfg.get('crop_size') or (512, 512)))
    num_classes = num_classes_of(cfg)
    root_p = Path(root)
    img_dir, seg_dir = (root_p / prefix.get(k, '') for k in ('img_path', 'seg_map_path'))
    for folder in (img_dir, seg_dir):
        folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = [f'bench_{i:05d}' for i in range(num_images)]
    for name in names:
        img, label = _synthetic_pair(rng, h, w, num_classes, 'VOC' in ds['type'])
        cv2.imwrite(str(img_dir / f'{name}{img_suffix}'), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        cv2.imwrite(str(seg_dir / f'{name}{seg_suffix}'), label)
    ann = ds.get('ann_file')
    if ann:
        (root_p / ann).parent.mkdir(parents=True, exist_ok=True)
        (root_p / ann).write_text('\n'.join(names) + '\n')
    ds['data_root'] = str(root_p)
    return ds


def data_infos(ds_cfg: dict, limit: int) -> list:
    """The dataset's own per-sample dicts (what its pipeline receives)."""
    from mmseg.registry import DATASETS
    ds_cfg = copy.deepcopy(ds_cfg)
    ds_cfg['pipeline'] = []
    ds_cfg.pop('indices', None)
    dataset = DATASETS.build(ds_cfg)
    n = min(limit, len(dataset))
    if n == 0:
        raise SegkitError(f"the dataset at {ds_cfg.get('data_root')} has no samples")
    return [dataset.get_data_info(i) for i in range(n)]


def _start(info: dict, pipeline_cfg: list) -> dict:
    """A copy of ``info`` for the pipeline, with its LoadAnnotations' reduce_zero_label."""
    results = copy.deepcopy(info)
    for t in pipeline_cfg:
        if t.get('type', '').endswith('LoadAnnotations') and t.get('reduce_zero_label') is not None:
            results['reduce_zero_label'] = bool(t['reduce_zero_label'])
            break
    return results


@contextlib.contextmanager
def worker_threads():
    """One DataLoader worker's threading: 1 torch thread, OpenCV threads off."""
    import cv2
    import torch
    old_torch, old_cv = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(0)
    try:
        yield
    finally:
        torch.set_num_threads(old_torch)
        cv2.setNumThreads(old_cv)


def profile_pipelines(pipeline_cfgs: list, infos: list, repeats: int = 2) -> list:
    """Each pipeline transform by transform on every info (a warm-up pass, then ``repeats``);
    pipelines alternate image by image, with the same seeds, so both see the same load."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import TRANSFORMS
    init_default_scope('mmseg')
    setups = [{'cfg': cfg, 'transforms': [TRANSFORMS.build(copy.deepcopy(t)) for t in cfg],
               'times': [], 'dropped': 0} for cfg in pipeline_cfgs]
    with worker_threads():
        for rep, (i, info) in itertools.product(range(repeats + 1), enumerate(infos)):
            for st in setups:  # rep 0: warm-up
                np.random.seed(rep * 100003 + i)
                random.seed(rep * 100003 + i)
                results, times = _start(info, st['cfg']), np.zeros(len(st['transforms']))
                for k, transform in enumerate(st['transforms']):
                    t0 = time.perf_counter()
                    results = transform(results)
                    times[k] = time.perf_counter() - t0
                    if results is None:
                        st['dropped'] += rep > 0
                        break
                if rep:
                    st['times'].append(times)
    out = []
    for st in setups:
        times = np.array(st['times'])  # image x transform
        n, total = len(times), float(times.sum())
        rows = [{'transform': t.get('type'), 'ms_per_image': 1e3 * float(x) / n,
                 'share': float(x) / total if total else 0.0}
                for t, x in zip(st['cfg'], times.sum(0))]
        out.append({'images': n, 'img_per_s_per_worker': n / total,
                    'ms_per_image': 1e3 * total / n,
                    'ms_per_image_median': 1e3 * float(np.median(times.sum(1))),
                    'transforms': rows,
                    'slowest': max(rows, key=lambda r: r['ms_per_image'])['transform'],
                    'dropped': st['dropped']})
    return out


class _PipelineDataset:
    def __init__(self, pipeline_cfg, infos):
        self.pipeline_cfg, self.infos = pipeline_cfg, infos
        self.pipeline = None

    def __len__(self):
        return len(self.infos)

    def __getitem__(self, i):
        if self.pipeline is None:  # first call in each worker process
            import cv2
            from mmcv.transforms import Compose
            from mmengine.registry import init_default_scope
            cv2.setNumThreads(0)
            init_default_scope('mmseg')
            self.pipeline = Compose(copy.deepcopy(self.pipeline_cfg))
        return self.pipeline(_start(self.infos[i], self.pipeline_cfg))


def loader_throughput(pipeline_cfg: list, infos: list, workers: int,
                      epochs: int = 2) -> dict:
    """Aggregate images/s of the last epoch of a torch DataLoader with ``workers`` processes."""
    import torch
    from mmengine.dataset import pseudo_collate
    loader = torch.utils.data.DataLoader(
        _PipelineDataset(pipeline_cfg, infos), batch_size=1, shuffle=False,
        num_workers=workers, collate_fn=pseudo_collate, persistent_workers=True,
        prefetch_factor=4)
    for _ in range(epochs):  # first epoch: worker start-up and file cache
        t0 = time.perf_counter()
        n = sum(1 for _ in loader)
        rate = n / (time.perf_counter() - t0)
    del loader
    return {'workers': workers, 'img_per_s': rate, 'img_per_s_per_worker': rate / workers}


def gpu_feed(per_worker: float, cores: int, gpus: int, workers_per_gpu: int,
             gpu_img_per_s: float) -> dict:
    """Can the workers feed the GPUs? Each GPU's process takes a core, the rest run workers."""
    usable = max(min(workers_per_gpu, (cores - gpus) // gpus), 1)
    supply = per_worker * usable
    return {'cores': cores, 'gpus': gpus, 'workers_per_gpu': usable,
            'needed_img_per_s_per_gpu': gpu_img_per_s,
            'supplied_img_per_s_per_gpu': supply, 'headroom': supply / gpu_img_per_s,
            'starves': supply < gpu_img_per_s}


def run(config: str, compare: Optional[str] = None, images: int = 40, repeats: int = 2,
        workers: int = 1, data_root: Optional[str] = None, synthetic: Optional[bool] = None,
        keep_dir: Optional[str] = None, cfg_options=None, log: Callable = print) -> dict:
    """The whole data benchmark; returns a JSON-ready dict."""
    cfg = load_config(config, cfg_options)
    ds = _leaf_dataset(cfg)
    if data_root:
        ds['data_root'] = data_root
    if synthetic is None:
        img = dataset_paths(ds).get('img_path')
        synthetic = not (img and os.path.isdir(img) and any(os.scandir(img)))
    tmp = None
    if not synthetic:
        source = f"real files under {ds.get('data_root')}"
    else:
        tmp = keep_dir or tempfile.mkdtemp(prefix='segkit_databench_')
        ds = write_synthetic_dataset(cfg, tmp, images)
        source = f'synthetic {ds["type"]} files in {tmp}'
    log(f'[segkit] data benchmark: {source}')
    infos = data_infos(ds, images)
    report = {'tool': 'segkit data benchmark', 'version': 1, 'source': source,
              'images': len(infos), 'repeats': repeats, 'setups': []}
    paths = [config] + ([compare] if compare else [])
    pipes = [list(c.train_dataloader.dataset.get('pipeline')
                  or _leaf_dataset(c).get('pipeline'))
             for c in [cfg] + [load_config(p) for p in paths[1:]]]
    for path, pipe, res in zip(paths, pipes, profile_pipelines(pipes, infos, repeats)):
        res['config'] = path
        if workers > 1:
            res['loader'] = loader_throughput(pipe, infos, workers)
        report['setups'].append(res)
        log(f"  {os.path.basename(path)}: {res['img_per_s_per_worker']:.1f} img/s per worker, "
            f"slowest {res['slowest']}")
    if compare:
        a, b = report['setups']
        report['compare'] = {'a': config, 'b': compare,
                             'b_vs_a_img_per_s': b['img_per_s_per_worker']
                             / a['img_per_s_per_worker']}
    if tmp and not keep_dir:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def print_report(report: dict) -> None:
    setups = report['setups']
    labels = ['A', 'B'] if len(setups) > 1 else ['config']
    rows = [[' / '.join(dict.fromkeys(r['transform'] for r in step if r)),
             *(cell for r in step for cell in ((f"{r['ms_per_image']:.2f}",
                                                f"{100 * r['share']:.1f}%") if r else ('', '')))]
            for step in itertools.zip_longest(*(s['transforms'] for s in setups))]
    summaries = {'total ms/image': lambda s: f"{s['ms_per_image']:.2f}",
                 'img/s per worker': lambda s: f"{s['img_per_s_per_worker']:.1f}"}
    if any('loader' in s for s in setups):
        summaries['DataLoader img/s'] = lambda s: (f"{s['loader']['img_per_s']:.1f} "
                                                   f"({s['loader']['workers']} w)"
                                                   if 'loader' in s else '-')
    rows += [[label, *(c for s in setups for c in (cell(s), ''))]
             for label, cell in summaries.items()]
    after = [f"{label}: {s['config']}  (slowest: {s['slowest']})"
             for label, s in zip(labels, setups)]
    if report.get('compare'):
        after.append(f"B vs A: {report['compare']['b_vs_a_img_per_s']:.2f}x images/s per "
                     'worker')
    feed = report.get('gpu_feed')
    if feed:
        after.append(
            f"GPU feed: {feed['gpus']} GPUs, {feed['cores']} cores -> "
            f"{feed['workers_per_gpu']} workers/GPU x "
            f"{setups[0]['img_per_s_per_worker']:.1f}"
            f" = {feed['supplied_img_per_s_per_gpu']:.0f} img/s per GPU vs "
            f"{feed['needed_img_per_s_per_gpu']:.0f} needed ({feed['source']}): headroom "
            f"{feed['headroom']:.1f}x{' -> STARVES' if feed['starves'] else ''}")
    print_table(f"train pipeline, one worker ({report['images']} images x "
                f"{report['repeats']}, {report['source'].split(' in ')[0]})",
                ['transform', *(f'{label} {col}' for label in labels for col in ('ms', 'share'))],
                rows, after=after)


def _needed_rate(args, config: str) -> tuple:
    if args.gpu_img_per_s:
        return float(args.gpu_img_per_s), 'given'
    if args.train_json:
        rep = json.loads(Path(args.train_json).read_text())
        best = max(s['train']['img_per_s'] for s in rep['setups'])
        return float(best), f'measured, {args.train_json}'
    for key, value in ASSUMED_GPU_IMG_PER_S.items():
        if key in os.path.basename(config):
            return value, 'assumed H100 bf16 speed, not measured'
    return 100.0, 'assumed, not measured'


def build_parser():
    p = argparse.ArgumentParser(
        prog='tools/benchmark_data.py', formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Images/s of a config's train pipeline per DataLoader worker, each "
        "transform's share, optionally vs a second config on the same files.",
        epilog='example:\n  tools/benchmark_data.py mmseg::mask2former/'
        'mask2former_swin-t_8xb2-160k_ade20k-512x512.py \\\n'
        '      --compare configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512.py')
    p.add_argument('config', help='config file (or mmseg::path/in/model/zoo.py)')
    p.add_argument('--compare', metavar='CONFIG2',
                   help="run CONFIG2's train pipeline on the same files (B vs A)")
    p.add_argument('--images', type=int, default=40, help='images (default 40)')
    p.add_argument('--repeats', type=int, default=2, help='timed passes (default 2)')
    p.add_argument('--workers', type=int, default=1,
                   help='also time a DataLoader with K worker processes (K > 1)')
    p.add_argument('--synthetic', action='store_true',
                   help='synthetic files even when the dataset is on disk')
    p.add_argument('--data-root', help="the dataset's root (default: the config's)")
    p.add_argument('--keep-dir', help='write the synthetic files here and keep them')
    p.add_argument('--gpus', type=int, default=3, help='GPUs to feed (default 3)')
    p.add_argument('--cores', type=int, default=16, help='CPU cores of the training '
                   'server (default 16)')
    p.add_argument('--gpu-img-per-s', type=float,
                   help="one GPU's training img/s to feed (default: --train-json, else an "
                   'assumed H100 number)')
    p.add_argument('--train-json', help='a tools/benchmark.py --json report: feed its '
                   'fastest setup')
    p.add_argument('--json', metavar='OUT', help='write the report here')
    add_cfg_options(p)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.images < 1 or args.repeats < 1:
        raise SegkitError('--images and --repeats must be >= 1')
    report = run(args.config, compare=args.compare, images=args.images,
                 repeats=args.repeats, workers=args.workers, data_root=args.data_root,
                 synthetic=True if args.synthetic else None, keep_dir=args.keep_dir,
                 cfg_options=args.cfg_options)
    workers = int(load_config(args.config).train_dataloader.get('num_workers', 4) or 4)
    for s in report['setups']:
        rate, source = _needed_rate(args, s['config'])
        s['gpu_feed'] = gpu_feed(s['img_per_s_per_worker'], args.cores, args.gpus, workers,
                                 rate) | {'source': source}
    report['gpu_feed'] = report['setups'][0]['gpu_feed']
    print_report(report)
    if args.json:
        write_json(args.json, report)
        print(f'[segkit] JSON: {args.json}')
    return 0
