"""Which checkpoint ``--resume`` continues from: bare, the newest complete one in the work
dir (``last_checkpoint``'s target, then ``epoch_*`` / ``iter_*`` newest first); a truncated
file (a kill during a save) is skipped with a warning naming it."""
from __future__ import annotations

import re
import shlex
import zipfile
from pathlib import Path
from typing import Optional

from segkit.errors import SegkitError


def checkpoint_problem(path: Path) -> Optional[str]:
    """None if ``path`` looks like a complete torch checkpoint, else why not: torch writes
    a zip whose central directory comes last, so a truncated file fails to open."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile) as err:
        return f'truncated or corrupt ({err})'
    return None if any(n.endswith('data.pkl') for n in names) else \
        'not a torch checkpoint (no data.pkl)'


def resume_state_problem(path: Path) -> Optional[str]:
    """Why ``path`` cannot be resumed from (no optimizer / scheduler state), or None."""
    missing = [k for k in ('optimizer', 'param_schedulers', 'message_hub')
               if k not in load_mmap(path)]
    if not missing:
        return None
    return (f'{path.name} holds no {" / ".join(missing)} state (mmseg saves best '
            'checkpoints without it), so training cannot continue from it: resume '
            "from an epoch_N.pth, or start a new run from its weights with "
            f'--cfg-options {shlex.quote(f"load_from={path}")}')


def load_mmap(path):
    """The checkpoint with memory-mapped tensors (cheap); a refused (crafted) file raises
    safe_load's one-line error."""
    import torch

    from segkit.safe_load import register_safe_globals, safe_load
    register_safe_globals()
    try:
        return torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - fall back to the error-reporting loader
        return safe_load(path)


def candidates(work_dir: Path) -> list[Path]:
    """Resumable checkpoints, newest first (best_* checkpoints hold no optimizer)."""
    found = []
    last = work_dir / 'last_checkpoint'
    if last.is_file():
        target = Path(last.read_text().strip())
        # mmengine writes absolute paths: a moved or copied work dir still points
        # at the old place, so take the file of that name here
        if not target.is_absolute() or target.parent.resolve() != work_dir.resolve():
            target = work_dir / target.name
        if target.is_file():
            found.append(target)
    for pattern in ('epoch_*.pth', 'iter_*.pth'):
        found += sorted(work_dir.glob(pattern), reverse=True,
                        key=lambda p: int(re.search(r'(\d*)\.pth$', p.name)[1] or -1))
    return list(dict.fromkeys(found))


def resolve_resume(resume: Optional[str], work_dir: str, logger=print):
    """Turn ``--resume [CHECKPOINT]`` into (cfg.resume, cfg.load_from)."""
    if resume is None:
        return False, None
    if resume != 'auto':
        path = Path(resume)
        if not path.is_file():
            raise SegkitError(f'--resume {resume}: no such file; pass a checkpoint path, '
                              'or bare --resume for the newest in the work dir')
        problem = checkpoint_problem(path) or resume_state_problem(path)
        if problem:
            raise SegkitError(f'--resume {resume}: {problem}')
        return True, str(path)
    for path in candidates(Path(work_dir)):
        problem = checkpoint_problem(path)
        if problem is None:
            logger(f'--resume: continuing from {path}')
            return True, str(path)
        logger(f'WARNING: skipping checkpoint {path}: {problem}')
    logger(f'--resume: no complete checkpoint in {work_dir}; starting from scratch')
    return False, None
