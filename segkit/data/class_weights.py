"""Class weights from the train split's pixel counts; behind ``tools/class_weights.py``.

With p_c = pixels of class c / all labelled train pixels (ignored pixels count nowhere):
    inverse  w_c = 1 / p_c, scaled so the classes seen in training average 1
    median   w_c = median_k(f_k) / f_c, f_c = pixels of c / labelled pixels of the
             images c appears in (Eigen & Fergus's median-frequency balancing)
    log      w_c = 1 / ln(1.02 + p_c) (ENet); bounded by construction: 1 .. 50.5
A class with no train pixels gets a neutral 1.0 (and a warning). Rare classes get huge
inverse/median weights (ADE20K's rarest is ~1000x below its commonest), a noisy loss:
both are capped at ``max_weight`` (default 10). For Mask2Former/MaskFormer heads the
JSON list ends with the "no object" weight (the config's own, else mmseg's 0.1).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from segkit.data.parallel import table
from segkit.data.validate import head_cfgs, validate
from segkit.engine.config import load_config
from segkit.errors import SegkitError
from segkit.io import write_text_keeping_old

DEFAULT_MAX_WEIGHT = {'inverse': 10.0, 'median': 10.0, 'log': None}
METHODS = tuple(DEFAULT_MAX_WEIGHT)
NO_OBJECT_WEIGHT = 0.1  # mmseg's Mask2Former/MaskFormer default
MASK_HEADS = ('Mask2FormerHead', 'MaskFormerHead')
ENET_C = 1.02


def _cap(method: str, max_weight: Union[str, float, None]) -> Optional[float]:
    if method not in METHODS:
        raise SegkitError(f'unknown method {method!r}: use one of {", ".join(METHODS)}')
    cap = DEFAULT_MAX_WEIGHT[method] if max_weight == 'default' else max_weight
    if cap is not None and cap <= 0:
        raise SegkitError(f'--max-weight must be positive, got {cap}')
    return cap


def compute_weights(pixels, method: str, present_pixels=None,
                    max_weight: Union[str, float, None] = 'default') -> np.ndarray:
    """(num_classes,) weights from per-class pixel counts (see module docstring)."""
    cap = _cap(method, max_weight)
    pixels = np.asarray(pixels, dtype=np.float64)
    seen = pixels > 0
    if not seen.any():
        raise SegkitError('the train split has no labelled pixels: run '
                          'tools/validate_dataset.py CONFIG --split train and fix its masks')
    freq = pixels[seen] / pixels.sum()
    if method == 'inverse':
        inv = 1.0 / freq
        seen_weights = inv / inv.mean()
    elif method == 'median':
        f = pixels[seen] / (pixels.sum() if present_pixels is None else
                            np.asarray(present_pixels)[seen])
        seen_weights = np.median(f) / f
    else:
        seen_weights = 1.0 / np.log(ENET_C + freq)
    weights = np.ones(len(pixels))
    weights[seen] = seen_weights
    return weights if cap is None else np.minimum(weights, cap)


def no_object_weight(cfg, num_classes: int) -> Optional[float]:
    """For a mask-classification head: the config's own "no object" weight if it
    lists one, else mmseg's 0.1; None for other heads."""
    heads = head_cfgs(cfg)
    if not any(str(h.get('type', '')).split('.')[-1] in MASK_HEADS for h in heads):
        return None
    cw = (heads[-1].get('loss_cls') or {}).get('class_weight')
    if isinstance(cw, (list, tuple)) and len(cw) == num_classes + 1:
        return float(cw[-1])
    return NO_OBJECT_WEIGHT


def default_output_path(cfg, config_path: str, method: str) -> str:
    return str(cfg.get('class_weight_file') or os.path.join(
        'data', 'class_weights', f'{Path(config_path).stem}-{method}.json'))


@dataclass
class WeightsResult:
    method: str
    path: str
    weights: list  # as saved: num_classes (+1 "no object" for mask classification)
    class_names: list
    pixels: np.ndarray  # (num_classes,) train pixels per class
    mask_classification: bool = False
    max_weight: Optional[float] = None
    unseen: list = field(default_factory=list)  # class names with no train pixels
    capped: list = field(default_factory=list)  # class names at the cap
    status: str = ''  # write_text_keeping_old's answer
    checked: int = 0  # train pairs counted


def class_weights_for_config(cfg, config_path: str, method: str = 'median',
                             out: Optional[str] = None,
                             max_weight: Union[str, float, None] = 'default',
                             workers: Optional[int] = None, sample: Optional[int] = None,
                             progress: bool = True,
                             allow_errors: bool = False) -> WeightsResult:
    """Count the train split (the validator's pass), compute and save the weights."""
    cap = _cap(method, max_weight)
    report = validate(cfg, ['train'], sample=sample, workers=workers, progress=progress)
    if report.errors and not allow_errors:
        first = report.errors[0]
        raise SegkitError(f'the train split has {len(report.errors):,} error(s) (first: '
                          f'{first.path}: {first.message}); fix them (python '
                          'tools/validate_dataset.py CONFIG --split train) or pass '
                          '--allow-errors to count the readable pixels anyway')
    pixels = report.class_pixels('train')
    weights = compute_weights(pixels, method, report.class_present_pixels('train'), cap)
    names = [str(n) for n in report.class_names]
    no_object = no_object_weight(cfg, report.num_classes)
    result = WeightsResult(
        method=method, path=out or default_output_path(cfg, config_path, method),
        weights=[float(w) for w in weights] + ([] if no_object is None else [no_object]),
        class_names=names, pixels=pixels, mask_classification=no_object is not None,
        max_weight=cap, unseen=[names[c] for c in np.flatnonzero(pixels == 0)],
        capped=[] if cap is None else
        [names[c] for c in np.flatnonzero((pixels > 0) & (weights >= cap))],
        checked=sum(s.checked for s in report.splits))
    result.status = write_text_keeping_old(
        result.path, json.dumps([round(w, 6) for w in result.weights]) + '\n')
    return result


def config_snippet(result: WeightsResult) -> str:
    """What to paste into a config (file form; the inline list as an alternative)."""
    lines = [f'# {result.method} class weights ({len(result.weights)} entries'
             f'{", no-object last" if result.mask_classification else ""}) from '
             f'{result.checked:,} train images',
             f"class_weight_file = '{result.path}'"]
    if result.mask_classification:
        lines += ['# (tools/train.py reads the file into the list Mask2Former expects)',
                  'model = dict(decode_head=dict(loss_cls=dict(class_weight=class_weight_file)))']
    else:
        lines += ["# (segkit's CE: mmseg 1.2.2's crashes on class weights + ignored pixels)",
                  'model = dict(decode_head=dict(loss_decode=dict(',
                  "    type='ClassWeightedCrossEntropyLoss', class_weight=class_weight_file)))"]
    vals = [f'{w:.4f}' for w in result.weights]
    rows = [', '.join(vals[i:i + 10]) for i in range(0, len(vals), 10)]
    lines.append('# or inline: class_weight=[' + (',\n#     '.join(rows)) + ']')
    return '\n'.join(lines)


def print_result(result: WeightsResult) -> None:
    from rich.console import Console
    console = Console()
    total = float(result.pixels.sum()) or 1.0
    weights = table(f'{result.method} class weights', ('id', 'class', 'train px', 'weight', ''),
                    right=('id', 'train px', 'weight'))
    for c, name in enumerate(result.class_names):
        note = 'unseen' if result.pixels[c] == 0 else 'capped' if name in result.capped else ''
        weights.add_row(str(c), name, f'{100 * result.pixels[c] / total:.3f}%',
                        f'{result.weights[c]:.4f}', note)
    if result.mask_classification:
        weights.add_row(str(len(result.class_names)), 'no object', '',
                        f'{result.weights[-1]:.4f}', 'kept')
    console.print(weights)
    if result.unseen:
        console.print(f'[yellow]warning:[/] {len(result.unseen)} class(es) have no train '
                      f'pixels and get weight 1.0: {", ".join(result.unseen[:20])}')
    if result.capped:
        console.print(f'{len(result.capped)} class(es) capped at {result.max_weight:g} '
                      '(--max-weight)')
    print(config_snippet(result))
    print(f'{result.path}: {result.status}')


def main(config: str, method: str = 'median', out: Optional[str] = None,
         max_weight: Union[str, float, None] = 'default', workers: Optional[int] = None,
         sample: Optional[int] = None, cfg_options: Optional[dict] = None,
         allow_errors: bool = False) -> int:
    cfg = load_config(config, cfg_options)
    print_result(class_weights_for_config(cfg, config, method, out, max_weight, workers,
                                          sample, allow_errors=allow_errors))
    return 0
