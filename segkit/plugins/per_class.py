"""Per-class IoU / accuracy: the metric that computes them and the hook that logs them.

:class:`PerClassIoUMetric` is mmseg's IoUMetric (its summary unchanged: aAcc, mIoU,
mAcc) that also puts per-class values and a confusion matrix on the message hub
(``INFO_KEY``); :class:`PerClassMetricsHook` writes them to TensorBoard and the JSON
log, and ``tools/test.py`` prints them. One module, so both register together.
"""
from __future__ import annotations

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import HOOKS, METRICS

INFO_KEY = 'segkit_per_class'


def class_scalars(info: dict, iou_tag: str, acc_tag: str) -> dict:
    """``<iou_tag>/<class>``, ``<acc_tag>/<class>`` of ``info`` (the message hub's
    ``INFO_KEY``); a class absent from the split has no value, not 0."""
    return {tag: value for name, iou, acc in zip(info['classes'], info['IoU'], info['Acc'])
            for tag, value in ((f'{iou_tag}/{name}', iou), (f'{acc_tag}/{name}', acc))
            if value is not None}


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    # keys stay 'mIoU', ... (save_best='mIoU'); '' also silences mmengine's
    # "The prefix is not set" warning
    default_prefix = ''

    def process(self, data_batch, data_samples) -> None:
        before = len(self.results)
        super().process(data_batch, data_samples)
        if self.format_only:
            return
        num_classes = len(self.dataset_meta['classes'])
        # sparse confusion entries per image (a full CxC per image would not fit)
        for i, sample in enumerate(data_samples):
            pred = sample['pred_sem_seg']['data'].squeeze()
            label = sample['gt_sem_seg']['data'].squeeze().to(pred)
            valid = label != self.ignore_index
            codes = label[valid].long() * num_classes + pred[valid].long()
            codes, counts = torch.unique(codes, return_counts=True)
            self.results[before + i] = self.results[before + i] + (
                codes.cpu(), counts.cpu())

    def compute_metrics(self, results: list) -> dict:
        metrics = super().compute_metrics([r[:4] for r in results])
        if self.format_only:
            return metrics
        num_classes = len(self.dataset_meta['classes'])
        inter = sum(r[0] for r in results).numpy()
        union = sum(r[1] for r in results).numpy()
        label = sum(r[3] for r in results).numpy()
        confusion = np.zeros(num_classes * num_classes, dtype=np.int64)
        for r in results:
            np.add.at(confusion, r[4].numpy(), r[5].numpy())
        with np.errstate(divide='ignore', invalid='ignore'):
            iou = inter / union
            acc = inter / label
        MessageHub.get_current_instance().update_info(INFO_KEY, dict(
            classes=list(self.dataset_meta['classes']),
            IoU=[None if np.isnan(v) else round(float(v) * 100, 2) for v in iou],
            Acc=[None if np.isnan(v) else round(float(v) * 100, 2) for v in acc],
            gt_pixels=[int(v) for v in label],
            # rows: ground truth, columns: prediction (ignore_index pixels excluded)
            confusion=confusion.reshape(num_classes, num_classes).tolist()))
        return metrics


@HOOKS.register_module()
class PerClassMetricsHook(Hook):
    """Writes ``IoU_per_class/<class>`` and ``Acc_per_class/<class>`` as one line of
    ``vis_data/<timestamp>.json`` (step = epoch, read by ``tools/analyze_run.py``) and,
    through :class:`~segkit.plugins.tensorboard.TensorboardHook`, ``val_IoU/<class>``
    and ``val_Acc/<class>`` at the validation's iteration. Needs :class:`PerClassIoUMetric`.
    """
    priority = 'BELOW_NORMAL'  # after LoggerHook has written the summary line

    def after_val_epoch(self, runner, metrics=None) -> None:
        hub = MessageHub.get_current_instance()
        info = hub.get_info(INFO_KEY)
        if not info or runner.rank != 0:
            return
        scalars = class_scalars(info, 'IoU_per_class', 'Acc_per_class')
        logger_hook = next((h for h in runner.hooks if type(h).__name__ == 'LoggerHook'), None)
        by_epoch = getattr(logger_hook, 'log_metric_by_epoch', True)
        step = runner.epoch if by_epoch else runner.iter
        runner.visualizer.add_scalars(scalars, step=step,
                                      file_path=f'{runner.timestamp}.json')
        # by name: plugins.tensorboard imports this module (class_scalars)
        board = next((h for h in runner.hooks if type(h).__name__ == 'TensorboardHook'), None)
        if board is not None:
            board.write_per_class(runner, info)
        hub.update_info(INFO_KEY, None)
