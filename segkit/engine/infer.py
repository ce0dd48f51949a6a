"""Inference on images or folders: colour-mask PNGs and overlays in the dataset palette."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from segkit.engine.config import load_config, resolve_config
from segkit.errors import SegkitError

IMAGE_SUFFIXES = {'.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp'}


def collect_inputs(inputs) -> list[Path]:
    """Image files from files and folders (recursively), sorted, without duplicates."""
    files = {}  # resolved path -> the path as given (the first of its duplicates)
    for item in inputs:
        p = Path(item)
        if not (p.is_dir() or p.is_file()):
            raise SegkitError(f'input {item} does not exist: pass image files or folders')
        for f in sorted(f for f in p.rglob('*') if f.suffix.lower() in IMAGE_SUFFIXES) \
                if p.is_dir() else [p]:
            files.setdefault(f.resolve(), f)
    out = list(files.values())
    if not out:
        raise SegkitError(f'no images found in {", ".join(map(str, inputs))} '
                          f'(looked for {", ".join(sorted(IMAGE_SUFFIXES))})')
    return out


def colourize(label: np.ndarray, palette) -> np.ndarray:
    """Label indices -> RGB with the palette (unknown indices black)."""
    lut = np.zeros((256, 3), np.uint8)
    pal = np.asarray(palette, np.uint8)[:256]
    lut[: len(pal)] = pal
    return lut[label.astype(np.int64).clip(0, 255)]


def run_inference(config: str, checkpoint: str, inputs, out_dir: str,
                  device: str | None = None, opacity: float = 0.5) -> list[Path]:
    """Write ``out_dir/masks/<name>.png`` (colour mask) and ``out_dir/overlays/<name>.png``
    for every input image; returns the mask paths."""
    import cv2
    import torch
    from mmseg.apis import inference_model, init_model
    from rich.progress import track

    files = collect_inputs(inputs)
    if not Path(checkpoint).is_file():
        raise SegkitError(f'checkpoint {checkpoint} does not exist')
    cfg = load_config(resolve_config(config))
    device = device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
    model = init_model(cfg, checkpoint, device=device)
    palette = model.dataset_meta.get('palette')
    if palette is None:
        raise SegkitError(f'{checkpoint} has no dataset palette in its meta')
    masks_dir, overlay_dir = Path(out_dir) / 'masks', Path(out_dir) / 'overlays'
    for folder in (masks_dir, overlay_dir):
        folder.mkdir(parents=True, exist_ok=True)
    unique_stems = len(files) == len({f.stem for f in files})
    written = []
    for f in track(files, description='inference'):
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise SegkitError(f'cannot read image {f}: not an image or corrupt')
        result = inference_model(model, img)
        bgr = colourize(result.pred_sem_seg.data.squeeze(0).cpu().numpy(), palette)[..., ::-1]
        name = f.stem if unique_stems else '_'.join(f.with_suffix('').parts[-2:])
        mask_path = masks_dir / f'{name}.png'
        cv2.imwrite(str(mask_path), bgr)
        cv2.imwrite(str(overlay_dir / f'{name}.png'),
                    cv2.addWeighted(img, 1 - opacity, bgr, opacity, 0))
        written.append(mask_path)
    return written
