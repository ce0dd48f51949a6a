"""Faster drop-ins for two of mmseg's train transforms: the same random draws in the same
order, so with the same seed the same arrays bit for bit (tests/test_perf.py checks it).

``FastRandomCrop``: mmseg's ``RandomCrop`` counts each try's classes (``cat_max_ratio <
1``) with ``np.unique``, a sort; here ``np.bincount`` for uint8 label maps, linear time.
``FastPhotoMetricDistortion``: the per-pixel float32 maps of uint8 pixels (brightness,
contrast, saturation, hue) computed once for the 256 values, applied with ``cv2.LUT``.
"""
from __future__ import annotations

import cv2
import mmcv
import numpy as np
from numpy import random  # mmseg's transforms draw from numpy's global RNG
from mmseg.datasets.transforms import PhotoMetricDistortion, RandomCrop
from mmseg.registry import TRANSFORMS

_VALUES = np.arange(256, dtype=np.float32)


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
            off_h = np.random.randint(0, max(img.shape[0] - self.crop_size[0], 0) + 1)
            off_w = np.random.randint(0, max(img.shape[1] - self.crop_size[1], 0) + 1)
            return off_h, off_h + self.crop_size[0], off_w, off_w + self.crop_size[1]

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
        return cv2.LUT(np.ascontiguousarray(img),
                       np.clip(_VALUES * alpha + beta, 0, 255).astype(np.uint8))

    def hue(self, img: np.ndarray) -> np.ndarray:
        if random.randint(2):
            img = mmcv.bgr2hsv(img)
            delta = random.randint(-self.hue_delta, self.hue_delta)
            if img.dtype == np.uint8:
                table = ((np.arange(256) + delta) % 180).astype(np.uint8)
                img[:, :, 0] = cv2.LUT(np.ascontiguousarray(img[:, :, 0]), table)
            else:
                img[:, :, 0] = (img[:, :, 0].astype(int) + delta) % 180
            img = mmcv.hsv2bgr(img)
        return img

