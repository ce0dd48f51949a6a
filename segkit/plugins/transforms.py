"""Faster drop-ins for two of mmseg's train transforms, output-identical.

Same random draws in the same order as mmseg's, so with the same seed they return
the same arrays bit for bit (tests/test_perf.py checks it); only the arithmetic is
cheaper. Registered in mmseg's TRANSFORMS on import (configs: ``custom_imports``
``'segkit.plugins.transforms'``).

``FastRandomCrop``  mmseg's ``RandomCrop``. With ``cat_max_ratio < 1`` mmseg tries up
    to 10 crops and counts each crop's classes with ``np.unique`` (a sort of 262,144
    labels per try). Here a ``np.bincount`` does the same count in linear time for
    uint8 label maps (other dtypes: mmseg's ``np.unique``).
``FastPhotoMetricDistortion``  mmseg's ``PhotoMetricDistortion``. Brightness,
    contrast, saturation and hue are per-value maps of uint8 pixels; mmseg computes
    them in float32 on every pixel (``img.astype(float32) * alpha + beta``, clip,
    cast back; ``(h.astype(int) + delta) % 180``). Here the same float32 formula is
    evaluated once for the 256 possible values and applied as a lookup table
    (``cv2.LUT``).
"""
from __future__ import annotations

import cv2
import mmcv
import numpy as np
from numpy import random  # mmseg's transforms draw from numpy's global RNG
from mmseg.datasets.transforms import PhotoMetricDistortion, RandomCrop
from mmseg.registry import TRANSFORMS

_VALUES = np.arange(256, dtype=np.float32)


def _lut(table: np.ndarray, img: np.ndarray) -> np.ndarray:
    return cv2.LUT(np.ascontiguousarray(img), table)


@TRANSFORMS.register_module()
class FastRandomCrop(RandomCrop):
    """mmseg's RandomCrop with a linear-time class count (identical crops)."""

    def _class_counts(self, seg: np.ndarray) -> np.ndarray:
        if seg.dtype == np.uint8:
            cnt = np.bincount(seg.ravel(), minlength=256)
            if 0 <= self.ignore_index < 256:
                cnt[self.ignore_index] = 0
            return cnt[cnt > 0]
        labels, cnt = np.unique(seg, return_counts=True)
        return cnt[labels != self.ignore_index]

    def crop_bbox(self, results: dict) -> tuple:
        img = results['img']

        def generate_crop_bbox() -> tuple:
            margin_h = max(img.shape[0] - self.crop_size[0], 0)
            margin_w = max(img.shape[1] - self.crop_size[1], 0)
            offset_h = np.random.randint(0, margin_h + 1)
            offset_w = np.random.randint(0, margin_w + 1)
            return (offset_h, offset_h + self.crop_size[0],
                    offset_w, offset_w + self.crop_size[1])

        crop_bbox = generate_crop_bbox()
        if self.cat_max_ratio < 1.:
            for _ in range(10):
                cnt = self._class_counts(self.crop(results['gt_seg_map'], crop_bbox))
                if len(cnt) > 1 and np.max(cnt) / np.sum(cnt) < self.cat_max_ratio:
                    break
                crop_bbox = generate_crop_bbox()
        return crop_bbox


@TRANSFORMS.register_module()
class FastPhotoMetricDistortion(PhotoMetricDistortion):
    """mmseg's PhotoMetricDistortion through lookup tables (identical output)."""

    def convert(self, img: np.ndarray, alpha: float = 1, beta: float = 0) -> np.ndarray:
        if img.dtype != np.uint8:
            return super().convert(img, alpha, beta)
        table = np.clip(_VALUES * alpha + beta, 0, 255).astype(np.uint8)
        return _lut(table, img)

    def hue(self, img: np.ndarray) -> np.ndarray:
        if random.randint(2):
            img = mmcv.bgr2hsv(img)
            delta = random.randint(-self.hue_delta, self.hue_delta)
            if img.dtype == np.uint8:
                table = ((np.arange(256) + delta) % 180).astype(np.uint8)
                img[:, :, 0] = _lut(table, img[:, :, 0])
            else:
                img[:, :, 0] = (img[:, :, 0].astype(int) + delta) % 180
            img = mmcv.hsv2bgr(img)
        return img


__all__ = ['FastPhotoMetricDistortion', 'FastRandomCrop']
