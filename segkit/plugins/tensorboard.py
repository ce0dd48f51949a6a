"""TensorBoard that reads like a dashboard: one run per work dir, one x-axis, grouped tags.

:class:`TensorboardHook` owns ``<work_dir>/tensorboard/`` (rank 0 only). Every point is
stepped by the global iteration; a resume reopens the same run with TensorBoard's
``purge_step`` at the resumed iteration + 1, so what the killed run logged after its
checkpoint is dropped (no duplicates, no gap). Tags:

    train/loss, train/<each loss term>, train/lr (or train/lr/<module> when the
    parameter groups' LRs differ, e.g. backbone vs decode_head)
    val/mIoU, val/mAcc, val/aAcc        at the iteration validation ran
    val_IoU/<class>, val_Acc/<class>    (written by PerClassMetricsHook through this hook)
    perf/iter_time, perf/data_time, perf/images_per_s, perf/gpu_memory_mb (CUDA)
    progress/epoch                      fractional epoch: the only epoch scale
    val_images/<k>                      image | ground truth | prediction, K fixed images

and a custom-scalars layout (overview, every class's IoU / Acc overlaid, the weakest
classes at the latest validation). mmengine's text/JSON logs (``<timestamp>/vis_data``)
stay as they are; its own TensorboardVisBackend is dropped (:func:`adopt`), or each
start would be a separate run stepped partly by epoch.
"""
from __future__ import annotations

import os.path as osp
from collections import Counter

import numpy as np
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

RUN_DIR = 'tensorboard'  # <work_dir>/tensorboard: the one run of a work dir
_HOOK = 'TensorboardHook'


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


def find(runner):
    """The run's TensorboardHook (None when the config has none)."""
    return next((h for h in runner.hooks if isinstance(h, TensorboardHook)), None)


@HOOKS.register_module()
class TensorboardHook(Hook):
    """Args:
        interval: train points every N iterations (None: LoggerHook's interval).
        num_images: validation images shown per validation (0: none).
        weakest: classes in the "weakest classes" chart (shown above 2x that many).
    """
    priority = 'LOW'  # after IterTimerHook / RuntimeInfoHook / LoggerHook

    def __init__(self, interval: int | None = None, num_images: int = 4,
                 weakest: int = 10) -> None:
        self.interval = interval
        self.num_images = num_images
        self.weakest = weakest
        self.writer = None
        self._images: list = []
        self._group_names: list = []

    # ------------------------------------------------------------ run lifecycle

    def before_train(self, runner) -> None:
        if runner.rank != 0:
            return
        from torch.utils.tensorboard import SummaryWriter
        if self.interval is None:
            logger = next((h for h in runner.hooks if type(h).__name__ == 'LoggerHook'), None)
            self.interval = getattr(logger, 'interval', 50)
        self.log_dir = osp.join(runner.work_dir, RUN_DIR)
        # fresh start: purge everything an earlier (checkpoint-less) start left;
        # resume at iteration N: keep steps <= N, drop the killed run's later points
        resumed = runner.iter > 0
        self.writer = SummaryWriter(self.log_dir, purge_step=runner.iter + 1 if resumed else 0)
        self._group_names = self._param_group_names(runner)
        if not resumed:
            self.write_layout(runner, weakest=[])

    def after_run(self, runner) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # ------------------------------------------------------------ train points

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        # every `interval` iterations and at the end of each epoch (as mmengine's LoggerHook)
        if self.writer is None or not (self.every_n_train_iters(runner, self.interval) or
                                       self.end_of_epoch(runner.train_dataloader, batch_idx)):
            return
        step = runner.iter + 1
        hub, n = runner.message_hub, self.interval
        scalars = {}
        for key, buf in hub.log_scalars.items():
            name = key[len('train/'):]
            if not key.startswith('train/') or name in ('lr', 'base_lr', 'time', 'data_time'):
                continue
            scalars[f'train/{name}'] = buf.mean(n)
        scalars.update(self._lrs(runner))
        if 'train/time' in hub.log_scalars:
            t = hub.log_scalars['train/time'].mean(n)
            scalars['perf/iter_time'] = t
            scalars['perf/data_time'] = hub.log_scalars['train/data_time'].mean(n)
            batch = len(data_batch['inputs']) if data_batch else 0
            if t > 0 and batch:
                from mmengine.dist import get_world_size
                scalars['perf/images_per_s'] = batch * get_world_size() / t
        import torch
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
        wrapper = runner.optim_wrapper
        optimizer = getattr(wrapper, 'optimizer', None)
        if optimizer is None:  # OptimWrapperDict (GANs): not a segmentation setup
            return []
        return [Counter(owner.get(id(p), 'other') for p in g['params']).most_common(1)[0][0]
                if g['params'] else 'other' for g in optimizer.param_groups]

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        # the LRs this iteration trains with (the schedulers step after it), as the
        # JSON log records them
        optimizer = getattr(runner.optim_wrapper, 'optimizer', None)
        self._iter_lrs = [(g['lr'], len(g['params'])) for g in optimizer.param_groups] \
            if optimizer is not None else []

    def _lrs(self, runner) -> dict:
        lrs_now = getattr(self, '_iter_lrs', [])
        if not lrs_now or not self._group_names:
            return {}
        per_module: dict = {}
        for name, (lr, n) in zip(self._group_names, lrs_now):
            per_module.setdefault(name, Counter())[lr] += n
        lrs = {m: c.most_common(1)[0][0] for m, c in per_module.items()}
        if len(set(lrs.values())) == 1:
            return {'train/lr': next(iter(lrs.values()))}
        return {f'train/lr/{m}': lr for m, lr in lrs.items()}

    # ------------------------------------------------------------ validation

    def before_val_epoch(self, runner) -> None:
        self._images = []

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        # the first K samples of rank 0's (unshuffled) val loader: the same K each time
        if self.writer is None or len(self._images) >= self.num_images or not outputs:
            return
        palette = runner.visualizer.dataset_meta.get('palette') if \
            runner.visualizer.dataset_meta else None
        for sample in outputs[: self.num_images - len(self._images)]:
            self._images.append(panel(sample, palette))

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self.writer is None:
            return
        step = self.val_step(runner)
        for key in ('mIoU', 'mAcc', 'aAcc'):
            if metrics and key in metrics:
                self.writer.add_scalar(f'val/{key}', float(metrics[key]), step)
        for k, img in enumerate(self._images):
            self.writer._get_file_writer().add_summary(image_summary(f'val_images/{k}', img), step)
        self._images = []
        self.writer.flush()

    @staticmethod
    def val_step(runner) -> int:
        return runner.iter  # iterations done when this validation ran

    def write_per_class(self, runner, info: dict) -> None:
        """val_IoU/<class>, val_Acc/<class> and the layout with the weakest classes."""
        if self.writer is None:
            return
        step = self.val_step(runner)
        ious = {}
        for name, iou, acc in zip(info['classes'], info['IoU'], info['Acc']):
            if iou is not None:  # absent from this split: no value, not 0
                self.writer.add_scalar(f'val_IoU/{name}', iou, step)
                ious[name] = iou
            if acc is not None:
                self.writer.add_scalar(f'val_Acc/{name}', acc, step)
        if len(info['classes']) > 2 * self.weakest:
            weakest = sorted(ious, key=ious.get)[: self.weakest]
            self.write_layout(runner, weakest, step)

    # ------------------------------------------------------------ layout

    def write_layout(self, runner, weakest: list, step: int = 0) -> None:
        """TensorBoard's custom-scalars layout (the "Custom Scalars" tab). Charts take
        regexes; the plugin shows the newest layout, so each validation rewrites the
        weakest-classes chart."""
        import re

        from torch.utils.tensorboard.summary import custom_scalars
        layout = {
            'overview': {'train/loss': ['Multiline', [r'^train/loss$']],
                         'train/lr': ['Multiline', [r'^train/lr']],
                         'val/mIoU': ['Multiline', [r'^val/mIoU$']]},
            'per class': {'IoU of every class': ['Multiline', [r'^val_IoU/']],
                          'Acc of every class': ['Multiline', [r'^val_Acc/']]},
            'perf': {'images/s': ['Multiline', [r'^perf/images_per_s$']],
                     'iteration and data time (s)': ['Multiline', [r'^perf/(iter|data)_time$']]},
        }
        if weakest:
            layout['per class'][f'{len(weakest)} weakest classes (IoU, latest validation)'] = [
                'Multiline', [f'^{re.escape("val_IoU/" + c)}$' for c in weakest]]
        self.writer._get_file_writer().add_summary(custom_scalars(layout), step)

def panel(sample, palette, max_height: int = 160) -> np.ndarray:
    """image | ground truth | prediction (RGB, HWC uint8), masks blended on the image
    in the dataset palette, at most ``max_height`` pixels high (cheap to draw and to
    store: everything is shrunk first, the JPEG decoded at reduced size)."""
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
    """A TensorBoard image summary, PNG-encoded by OpenCV at low compression (PIL's
    encoder, which torch's add_image uses, costs several times more)."""
    import cv2
    from tensorboard.compat.proto.summary_pb2 import Summary
    ok, png = cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]),
                           [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
        height=rgb.shape[0], width=rgb.shape[1], colorspace=3,
        encoded_image_string=png.tobytes()))])
