"""This repository's config variants and commands, named for a run's config.

A config of ours is ``configs/<family>/<stem>.py``; its variants sit beside it as
``<stem>_<variant>.py`` (``_cw-ce``, ``_focal``, ``_lovasz``, ``_ce-lovasz``,
``_strong-aug``, ``_cosine``, ``_aux-head``) and a bigger encoder swaps the
backbone token (``mit-b2`` -> ``mit-b4``). For a config that is not ours (the demo,
mmseg's zoo) the existing variants of other configs are named as examples.
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ('cw-ce', 'focal', 'lovasz', 'ce-lovasz', 'strong-aug', 'cosine', 'aux-head')
_BACKBONE = re.compile(r'(mit-b|swin-)([0-9a-z])(?=_)')
_SIZES = {'swin-': 'tsbl'}  # swin-t < swin-s < swin-b < swin-l; mit-b0 < ... < b5


def repo_relative(config: Optional[str], cwd: Optional[str] = None) -> Optional[str]:
    """The config as a path relative to this repository when it is inside it."""
    if not config:
        return None
    if '::' in config:
        return config
    p = Path(config)
    if not p.is_absolute():
        p = Path(cwd or ROOT) / p
    try:
        return p.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(p)


def base_stem(stem: str) -> str:
    """``x_cw-ce`` -> ``x``: the stem of the main config a variant derives from."""
    for v in sorted(VARIANTS, key=len, reverse=True):
        if stem.endswith('_' + v):
            return stem[: -len(v) - 1]
    return stem


def _ours(config: Optional[str]) -> Optional[Path]:
    if not config or '::' in config:
        return None
    p = ROOT / config if not Path(config).is_absolute() else Path(config)
    try:
        p.resolve().relative_to(ROOT / 'configs')
    except ValueError:
        return None
    return p


def variant(config: Optional[str], name: str) -> Optional[str]:
    """The ``_<name>`` variant of ``config`` when this repository has it."""
    p = _ours(config)
    if p is None:
        return None
    cand = p.parent / f'{base_stem(p.stem)}_{name}.py'
    return cand.relative_to(ROOT).as_posix() if cand.is_file() else None


def variant_examples(name: str) -> list:
    """Every ``configs/**/*_<name>.py`` of this repository (for foreign configs)."""
    return sorted(p.relative_to(ROOT).as_posix()
                  for p in (ROOT / 'configs').rglob(f'*_{name}.py')
                  if base_stem(p.stem) + '_' + name == p.stem)


def variant_or_example(config: Optional[str], name: str) -> tuple:
    """(path, is_ours): the run's own variant, else an example of another config
    (one of the same model family first)."""
    own = variant(config, name)
    if own:
        return own, True
    algo = Path(config).stem.split('_')[0] if config else ''
    ex = sorted(variant_examples(name), key=lambda p: (Path(p).stem.split('_')[0] != algo, p))
    return (ex[0] if ex else None), False


def bigger_encoders(config: Optional[str]) -> list:
    """Configs of this repository identical to ``config`` but a bigger backbone."""
    p = _ours(config)
    if p is None:
        return []
    stem = base_stem(p.stem)
    m = _BACKBONE.search(stem)
    if not m:
        return []
    order = _SIZES.get(m.group(1), '0123456789')
    if m.group(2) not in order:
        return []
    out = []
    for size in order[order.index(m.group(2)) + 1:]:
        cand_stem = stem[: m.start(2)] + size + stem[m.end(2):]
        # the schedule / batch part may differ; match on algo + backbone + dataset
        pattern = f"{cand_stem.split('_')[0]}_{m.group(1)}{size}_*.py"
        for cand in sorted(p.parent.glob(pattern)):
            if base_stem(cand.stem) == cand.stem and cand.stem.endswith(stem.split('_')[-1]):
                out.append(cand.relative_to(ROOT).as_posix())
    return out


def command(*args) -> str:
    return ' '.join(shlex.quote(str(a)) for a in args)


def short_path(path) -> str:
    """A path as short as it can be said: relative to the cwd when inside it."""
    p = Path(path).resolve()
    try:
        rel = p.relative_to(Path(os.getcwd()).resolve())
        return rel.as_posix() or '.'
    except ValueError:
        return str(p)
