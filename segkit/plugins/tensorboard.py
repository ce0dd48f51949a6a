"""TensorBoard that reads like a dashboard: one run per work dir, one x-axis, grouped tags.

:class:`TensorboardHook` owns ``<work_dir>/tensorboard/`` (rank 0), every point stepped by
the global iteration; a resume reopens the run with ``purge_step`` = resumed iteration + 1,
dropping what the killed run logged after its checkpoint. Tags:

    train/loss, train/<each loss term>, train/lr (or train/lr/<module> when the groups differ)
    val/mIoU, val/mAcc, val/aAcc        at the iteration validation ran
    val_IoU/<class>, val_Acc/<class>    (PerClassMetricsHook, through this hook)
    perf/iter_time, perf/data_time, perf/images_per_s, perf/gpu_memory_mb (CUDA)
    progress/epoch                      fractional epoch: the only epoch scale
    val_images/<k>                      image | ground truth | prediction, K fixed images

plus a custom-scalars layout (overview, every class's IoU / Acc, the weakest classes).
mmengine's own TensorboardVisBackend is dropped (:func:`adopt`): each start would be a
separate run stepped partly by epoch.
"""
from __future__ import annotations

import os.path as osp
import re
from collections import Counter

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from segkit.plugins.per_class import class_scalars

RUN_DIR = 'tensorboard'  # <work_dir>/tensorboard: the one run of a work dir
_HOOK = 'TensorboardHook'
_TRAIN_SKIP = ('lr', 'base_lr', 'time', 'data_time')  # logged under other tags


def adopt(cfg) -> None:
    """Configure ``cfg`` for segkit's TensorBoard: the hook in, mmengine's backend out."""
    vis = cfg.get('visualizer')
    if vis and vis.get('vis_backends'):
        vis['vis_backends'] = [b for b in vis['vis_backends']
                               if b.get('type') != 'TensorboardVisBackend']
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == _HOOK for h in hooks):
        hooks.append(dict(type=_HOOK))
    cfg.custom_hooks = hooks


@HOOKS.register_module()
class TensorboardHook(Hook):
    """``interval``: train points every N iterations (None: LoggerHook's); ``num_images``:
    validation images shown (0: none); ``weakest``: classes in the weakest-classes chart
    (shown above 2x that many classes)."""
    priority = 'LOW'  # after IterTimerHook / RuntimeInfoHook / LoggerHook

    def __init__(self, interval: int | None = None, num_images: int = 4,
                 weakest: int = 10) -> None:
        self.interval, self.num_images, self.weakest = interval, num_images, weakest
        self.writer = None
        self._images: list = []
        self._group_names: list = []
        self._iter_lrs: list = []

    def before_train(self, runner) -> None:
        if runner.rank != 0:
            return
        from torch.utils.tensorboard import SummaryWriter
        if self.interval is None:
            logger = next((h for h in runner.hooks if type(h).__name__ == 'LoggerHook'), None)
            self.interval = getattr(logger, 'interval', 50)
        # fresh start: purge what an earlier (checkpoint-less) start left; resume at
        # iteration N: keep steps <= N
        resumed = runner.iter > 0
        self.writer = SummaryWriter(osp.join(runner.work_dir, RUN_DIR),
                                    purge_step=runner.iter + 1 if resumed else 0)
        self._group_names = self._param_group_names(runner)
        if not resumed:
            self.write_layout(runner, weakest=[])

    def after_run(self, runner) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        # every `interval` iterations and at the end of each epoch (as LoggerHook)
        if self.writer is None or not (self.every_n_train_iters(runner, self.interval) or
                                       self.end_of_epoch(runner.train_dataloader, batch_idx)):
            return
        step, logs, n = runner.iter + 1, runner.message_hub.log_scalars, self.interval
        scalars = {key: buf.mean(n) for key, buf in logs.items()
                   if key.startswith('train/') and key[len('train/'):] not in _TRAIN_SKIP}
        scalars.update(self._lrs())
        if 'train/time' in logs:
            t = scalars['perf/iter_time'] = logs['train/time'].mean(n)
            scalars['perf/data_time'] = logs['train/data_time'].mean(n)
            batch = len(data_batch['inputs']) if data_batch else 0
            if t > 0 and batch:
                scalars['perf/images_per_s'] = batch * get_world_size() / t
        if torch.cuda.is_available():
            scalars['perf/gpu_memory_mb'] = torch.cuda.max_memory_allocated() / 2**20
        scalars['progress/epoch'] = step / max(1, len(runner.train_dataloader))
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, float(value), step)
        self.writer.flush()  # every logged point on disk: a crash loses none of them

    def _param_group_names(self, runner) -> list:
        """Per optimizer param group: the top-level module most of its params are in."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        owner = {id(p): name.split('.')[0] for name, p in model.named_parameters()}
        optimizer = getattr(runner.optim_wrapper, 'optimizer', None)
        if optimizer is None:  # OptimWrapperDict (GANs): not a segmentation setup
            return []
        return [Counter(owner.get(id(p), 'other') for p in g['params']).most_common(1)[0][0]
                if g['params'] else 'other' for g in optimizer.param_groups]

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        # the LRs this iteration trains with (schedulers step after it), as the JSON log
        optimizer = getattr(runner.optim_wrapper, 'optimizer', None)
        self._iter_lrs = [(g['lr'], len(g['params'])) for g in optimizer.param_groups] \
            if optimizer is not None else []

    def _lrs(self) -> dict:
        """train/lr, or train/lr/<module> (each module's most common LR) when they differ."""
        if not self._iter_lrs or not self._group_names:
            return {}
        per_module: dict = {}
        for name, (lr, n) in zip(self._group_names, self._iter_lrs):
            per_module.setdefault(name, Counter())[lr] += n
        lrs = {m: c.most_common(1)[0][0] for m, c in per_module.items()}
        if len(set(lrs.values())) == 1:
            return {'train/lr': next(iter(lrs.values()))}
        return {f'train/lr/{m}': lr for m, lr in lrs.items()}

    def before_val_epoch(self, runner) -> None:
        self._images = []

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        # the first K samples of rank 0's (unshuffled) val loader: the same K each time
        if self.writer is None or len(self._images) >= self.num_images or not outputs:
            return
        palette = (runner.visualizer.dataset_meta or {}).get('palette')
        for sample in outputs[: self.num_images - len(self._images)]:
            self._images.append(panel(sample, palette))

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self.writer is None:
            return
        for key in ('mIoU', 'mAcc', 'aAcc'):
            if metrics and key in metrics:
                self.writer.add_scalar(f'val/{key}', float(metrics[key]), runner.iter)
        for k, img in enumerate(self._images):
            self._add_summary(image_summary(f'val_images/{k}', img), runner.iter)
        self._images = []
        self.writer.flush()

    def _add_summary(self, summary, step: int) -> None:
        self.writer._get_file_writer().add_summary(summary, step)

    def write_per_class(self, runner, info: dict) -> None:
        """val_IoU/<class>, val_Acc/<class> (at the iteration validation ran) and the
        layout with the weakest classes."""
        if self.writer is None:
            return
        for tag, value in class_scalars(info, 'val_IoU', 'val_Acc').items():
            self.writer.add_scalar(tag, value, runner.iter)
        if len(info['classes']) > 2 * self.weakest:
            ious = {c: v for c, v in zip(info['classes'], info['IoU']) if v is not None}
            self.write_layout(runner, sorted(ious, key=ious.get)[: self.weakest], runner.iter)

    def write_layout(self, runner, weakest: list, step: int = 0) -> None:
        """The "Custom Scalars" tab (charts take regexes; TensorBoard shows the newest
        layout, so each validation rewrites the weakest-classes chart)."""
        from torch.utils.tensorboard.summary import custom_scalars

        def chart(*regexes):
            return ['Multiline', list(regexes)]
        layout = {
            'overview': {'train/loss': chart(r'^train/loss$'), 'train/lr': chart(r'^train/lr'),
                         'val/mIoU': chart(r'^val/mIoU$')},
            'per class': {'IoU of every class': chart(r'^val_IoU/'),
                          'Acc of every class': chart(r'^val_Acc/')},
            'perf': {'images/s': chart(r'^perf/images_per_s$'),
                     'iteration and data time (s)': chart(r'^perf/(iter|data)_time$')},
        }
        if weakest:
            layout['per class'][f'{len(weakest)} weakest classes (IoU, latest validation)'] = \
                chart(*(f'^{re.escape("val_IoU/" + c)}$' for c in weakest))
        self._add_summary(custom_scalars(layout), step)


def panel(sample, palette, max_height: int = 160) -> np.ndarray:
    """image | ground truth | prediction (RGB, HWC uint8), masks blended on the image in
    the dataset palette, at most ``max_height`` high (the JPEG decoded at reduced size)."""
    import cv2
    pred = sample.pred_sem_seg.data.squeeze(0).cpu().numpy()
    gt = sample.gt_sem_seg.data.squeeze(0).cpu().numpy() if 'gt_sem_seg' in sample else None
    h, w = pred.shape
    scale = min(1.0, max_height / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    reduce = next((f for f in (8, 4, 2) if h / f >= size[1]), 1)
    flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
            4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[reduce]
    img = cv2.imread(sample.img_path, flag)
    img = np.zeros((size[1], size[0], 3), np.uint8) if img is None else \
        cv2.resize(img, size, interpolation=cv2.INTER_AREA)[..., ::-1]
    ys = (np.arange(size[1]) * h // size[1])[:, None]
    xs = (np.arange(size[0]) * w // size[0])[None, :]
    n = int(max(pred.max(), 0 if gt is None else gt[gt < 255].max(initial=0))) + 1
    if palette is None or len(palette) < n:
        palette = np.random.RandomState(42).randint(0, 255, (max(n, 256), 3))
    pal = np.asarray(palette, np.uint8)

    def overlay(mask):
        mask = mask[ys, xs]
        out = cv2.addWeighted(np.ascontiguousarray(img), 0.4,
                              pal[np.minimum(mask, len(pal) - 1)], 0.6, 0)
        ignored = mask >= len(pal)
        out[ignored] = img[ignored]
        return out

    sep = np.full((size[1], max(2, size[0] // 64), 3), 255, np.uint8)
    return np.concatenate([img, sep, overlay(gt) if gt is not None else np.zeros_like(img),
                           sep, overlay(pred)], axis=1)


def image_summary(tag: str, rgb: np.ndarray):
    """A TensorBoard image summary, PNG-encoded by OpenCV at low compression (several
    times cheaper than PIL's encoder, which torch's add_image uses)."""
    import cv2
    from tensorboard.compat.proto.summary_pb2 import Summary
    _, png = cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]),
                          [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
        height=rgb.shape[0], width=rgb.shape[1], colorspace=3,
        encoded_image_string=png.tobytes()))])
