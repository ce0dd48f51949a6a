"""mmseg's IoUMetric, also keeping per-class IoU / accuracy and a confusion matrix.

The summary it returns is unchanged (aAcc, mIoU, mAcc); the per-class values go
to the message hub (``segkit_per_class``) where :class:`PerClassMetricsHook`
writes them to TensorBoard and the JSON log, and ``tools/test.py`` prints them.
"""
from __future__ import annotations

import numpy as np
import torch
from mmengine.logging import MessageHub
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS

INFO_KEY = 'segkit_per_class'


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):

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
