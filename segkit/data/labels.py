"""Label maps on disk: single-channel PNGs of class indices (mode 'L'), read
back as mmseg reads them, and SBD's ``cls/*.mat`` (``GTcls.Segmentation``)."""
from __future__ import annotations

import io
from typing import Union

import numpy as np
from PIL import Image

from segkit.io import atomic_write


def read_label_png(path) -> np.ndarray:
    """Class indices of a label PNG; a palette PNG gives its indices, as with
    mmseg's ``LoadAnnotations`` (pillow backend, 'unchanged')."""
    with Image.open(path) as img:
        return np.array(img)


def save_label_png(path: str, labels: np.ndarray) -> None:
    """Write ``labels`` (H x W, values 0..255) as a mode 'L' PNG, atomically: not a
    palette PNG, so every reader (cv2 too, which expands palettes) gets the indices."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f'label map must be 2-D, got shape {labels.shape}')
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f'label values must fit in 0..255, got {labels.min()}..{labels.max()}')
    img = Image.fromarray(labels.astype(np.uint8))  # uint8 2-D: mode 'L'
    atomic_write(path, lambda tmp: img.save(tmp, format='PNG'))


def sbd_segmentation(src: Union[str, bytes]) -> np.ndarray:
    """``GTcls.Segmentation`` of an SBD ``cls/*.mat`` (path or file bytes)."""
    from scipy.io import loadmat
    data = loadmat(io.BytesIO(src) if isinstance(src, bytes) else src)
    if 'GTcls' not in data:
        raise ValueError('no GTcls struct (is this an SBD dataset/cls/*.mat file?)')
    seg = np.asarray(data['GTcls']['Segmentation'][0, 0])
    if seg.ndim != 2:
        raise ValueError(f'GTcls.Segmentation has shape {seg.shape}, expected H x W')
    return seg
