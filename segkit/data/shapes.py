"""The built-in demo dataset: shapes on textured backgrounds, made deterministically.

A real (if small) segmentation task, so a broken pipeline cannot score well: textured,
noisy backgrounds of random colour (stripes, blotches, grain); 2-5 overlapping shapes
per image, later ones occluding earlier ones, sizes varying 3x; every shape's colour and
texture drawn from the same distribution, so only geometry says the class (a ring and a
disk differ by their hole, a square and a triangle by their corners); class imbalance
like real data: background dominates and "ring" is rare.

Layout (mmseg's): ``<root>/img_dir/{train,val}/NNNNN.jpg`` and
``<root>/ann_dir/{train,val}/NNNNN.png`` (label indices), plus ``meta.json``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

CLASSES = ('background', 'disk', 'square', 'triangle', 'ring')
PALETTE = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200], [255, 225, 25]]
# probability that a drawn shape is of each foreground class (ring is rare)
SHAPE_PROBS = {'disk': 0.34, 'square': 0.33, 'triangle': 0.28, 'ring': 0.05}
DEFAULT_SIZES = {'train': 480, 'val': 120}
VERSION = 2  # bump when the generator changes what it draws


def _texture(rng: np.random.Generator, h: int, w: int, base: np.ndarray,
             strength: float) -> np.ndarray:
    """Low-frequency blotches + oriented stripes + grain around a base colour."""
    grid = rng.normal(0, 1, (max(h // 8, 2), max(w // 8, 2), 3)).astype(np.float32)
    blotch = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle, period = rng.uniform(0, math.pi), rng.uniform(4, 16)
    stripes = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
    grain = rng.normal(0, 1, (h, w, 3)).astype(np.float32)
    return base[None, None, :] + strength * (
        18 * blotch + 14 * stripes[..., None] * rng.uniform(0.3, 1.0) + 10 * grain)


def _random_colour(rng: np.random.Generator, away_from=None, min_dist=90.0) -> np.ndarray:
    """A random colour; with ``away_from``, one at least ``min_dist`` (RGB) from it,
    so shapes are visible on their background whatever their class."""
    for _ in range(50):
        hsv = np.uint8([[[rng.integers(0, 180), rng.integers(40, 256), rng.integers(60, 256)]]])
        bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)
        if away_from is None or np.linalg.norm(bgr - away_from) >= min_dist:
            break
    return bgr


def _polygon(cx: float, cy: float, r: float, sides: int, angle: float) -> np.ndarray:
    pts = [(cx + r * math.cos(angle + 2 * math.pi * k / sides),
            cy + r * math.sin(angle + 2 * math.pi * k / sides)) for k in range(sides)]
    return np.round(np.array(pts)).astype(np.int32)


def _shape_mask(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    r = rng.uniform(0.09, 0.28) * min(h, w)  # 3x scale range
    cx, cy = rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h)
    mask = np.zeros((h, w), np.uint8)
    if kind == 'disk':
        cv2.circle(mask, (int(cx), int(cy)), int(r), 1, -1)
    elif kind == 'ring':
        r = max(r, 0.12 * min(h, w))  # a ring needs room for its hole
        cv2.circle(mask, (int(cx), int(cy)), int(r), 1, -1)
        cv2.circle(mask, (int(cx), int(cy)), int(r * rng.uniform(0.45, 0.6)), 0, -1)
    elif kind == 'square':
        cv2.fillPoly(mask, [_polygon(cx, cy, r * 1.15, 4, rng.uniform(0, math.pi / 2))], 1)
    elif kind == 'triangle':
        cv2.fillPoly(mask, [_polygon(cx, cy, r * 1.25, 3, rng.uniform(0, 2 * math.pi))], 1)
    return mask.astype(bool)


def make_sample(rng: np.random.Generator, size: int = 64) -> tuple:
    """One (BGR uint8 image, uint8 label map) pair."""
    background = _random_colour(rng)
    img = _texture(rng, size, size, background, strength=rng.uniform(0.5, 1.2))
    label = np.zeros((size, size), np.uint8)
    kinds, probs = list(SHAPE_PROBS), np.array(list(SHAPE_PROBS.values()))
    for _ in range(rng.integers(2, 6)):
        kind = kinds[rng.choice(len(kinds), p=probs / probs.sum())]
        mask = _shape_mask(kind, size, size, rng)
        if mask.any():
            fill = _texture(rng, size, size, _random_colour(rng, away_from=background),
                            strength=rng.uniform(0.15, 0.5))
            img[mask] = fill[mask]
            label[mask] = CLASSES.index(kind)
    img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.3, 0.9))  # soft edges, like a camera
    img += rng.normal(0, rng.uniform(2, 6), img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), label


def generate(root='data/demo', seed: int = 0, sizes: dict | None = None,
             image_size: int = 64, force: bool = False) -> dict:
    """Write the demo dataset under ``root`` (skipped if the same one is there); returns
    the meta dict written to ``root/meta.json``, with per-split class pixel frequencies."""
    root, sizes = Path(root), dict(sizes or DEFAULT_SIZES)
    want = dict(version=VERSION, seed=seed, sizes=sizes, image_size=image_size,
                classes=list(CLASSES), palette=PALETTE)
    meta_path = root / 'meta.json'
    if meta_path.exists() and not force:
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in want} == want and _complete(root, sizes):
            return meta
    stats = {}
    for split_id, (split, n) in enumerate(sorted(sizes.items())):
        img_dir, ann_dir = root / 'img_dir' / split, root / 'ann_dir' / split
        for folder in (img_dir, ann_dir):
            folder.mkdir(parents=True, exist_ok=True)
        pixels, images = np.zeros((2, len(CLASSES)), np.int64)
        for i in range(n):
            img, label = make_sample(np.random.default_rng([seed, split_id, i]), image_size)
            cv2.imwrite(str(img_dir / f'{i:05d}.jpg'), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            cv2.imwrite(str(ann_dir / f'{i:05d}.png'), label)
            counts = np.bincount(label.ravel(), minlength=len(CLASSES))
            pixels += counts
            images += counts > 0
        stats[split] = dict(pixel_fraction=(pixels / pixels.sum()).round(4).tolist(),
                            image_fraction=(images / n).round(4).tolist())
    meta = dict(want, stats=stats)
    meta_path.write_text(json.dumps(meta, indent=1) + '\n')
    return meta


def _complete(root: Path, sizes: dict) -> bool:
    return all(len(list((root / d / s).glob(f'*{ext}'))) == n
               for s, n in sizes.items() for d, ext in (('img_dir', '.jpg'), ('ann_dir', '.png')))
