"""Writing outputs without ever destroying earlier ones: atomic writes (an interrupted
run leaves no half-written file that a re-run would take as done) and text files whose
older, different version is kept as a backup."""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import time
from pathlib import Path
from typing import Callable

TMP_MARK = '.segkit-tmp-'


def tmp_path(path: str, suffix: str = '') -> str:
    """The one temp name of every atomic write: hidden, beside ``path`` (same filesystem,
    so the rename is atomic), ending in the writer's PID (so dataset scans by suffix skip
    it and :func:`remove_stale_temporaries` knows its owner)."""
    head, tail = os.path.split(path)
    return os.path.join(head, f'.{tail}{TMP_MARK}{os.getpid()}{suffix}')


def commit(tmp: str, path: str, durable: bool = False) -> None:
    """Rename the finished ``tmp`` onto ``path``; ``durable``: fsync the file before
    and the directory after (checkpoints: a power cut keeps old or new, never half)."""
    if durable:
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        with contextlib.suppress(OSError):
            fd = os.open(os.path.dirname(path) or '.', os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def atomic_write(path: str, write: Callable, durable: bool = False,
                 suffix: str = '') -> None:
    """``write(tmp)`` then rename onto ``path``; on any error (a full disk, a kill) the
    temp file is removed and ``path`` keeps its old content. ``suffix``: for a writer
    that needs one on the temp file (a config mmengine must load)."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = tmp_path(path, suffix)
    try:
        write(tmp)
        commit(tmp, path, durable)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def remove_stale_temporaries(folder: str) -> list[str]:
    """Partial files left by a kill during a write (never a finished file); a file
    whose writer (the PID in its name) still runs here is left alone."""
    stale = []
    for p in glob.glob(os.path.join(folder, f'*{TMP_MARK}*')) + \
            glob.glob(os.path.join(folder, f'.*{TMP_MARK}*')):
        pid = p.rsplit(TMP_MARK, 1)[1].split('.')[0]
        if not (pid.isdigit() and _alive(int(pid))):
            with contextlib.suppress(OSError):
                os.remove(p)
                stale.append(p)
    return stale


def atomic_write_bytes(path: str, data: bytes, durable: bool = False) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), durable)


def atomic_copy_stream(path: str, src, chunk: int = 1 << 20) -> None:
    """Copy the readable file object ``src`` to ``path`` atomically."""
    def write(tmp):
        with open(tmp, 'wb') as f:
            shutil.copyfileobj(src, f, chunk)
    atomic_write(path, write)


def write_text_keeping_old(path: str, text: str) -> str:
    """Write ``text`` to ``path``. Returns 'written', 'unchanged', or 'replaced (old kept
    at X)' when a different file was there: it is renamed (``path.YYYYmmdd-HHMMSS.bak``,
    with a counter if taken), never overwritten."""
    result = 'written'
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return 'unchanged'
        stamp = time.strftime('%Y%m%d-%H%M%S')
        old, n = f'{path}.{stamp}.bak', 1
        while os.path.exists(old):
            old, n = f'{path}.{stamp}-{n}.bak', n + 1
        os.replace(path, old)
        result = f'replaced (old kept at {old})'
    atomic_write_bytes(path, text.encode('utf-8'))
    return result


def read_lines(path: str) -> list[str]:
    """Non-empty stripped lines (a name list like ImageSets/Segmentation/val.txt)."""
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]
