"""Writing outputs without ever destroying earlier ones: atomic writes (an
interrupted run leaves no half-written file that a re-run would take as done)
and text files whose older, different version is kept as a backup."""
from __future__ import annotations

import os
import time
from typing import Callable


def _tmp_name(path: str) -> str:
    # hidden and with a foreign suffix, so dataset scans (suffix '.png') skip it
    head, tail = os.path.split(path)
    return os.path.join(head, f'.{tail}.{os.getpid()}.tmp')


def atomic_write(path: str, write: Callable) -> None:
    """``write(tmp_path)`` then rename onto ``path`` (same directory, atomic)."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = _tmp_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_bytes(path: str, data: bytes) -> None:
    def write(tmp):
        with open(tmp, 'wb') as f:
            f.write(data)
    atomic_write(path, write)


def atomic_copy_stream(path: str, src, chunk: int = 1 << 20) -> None:
    """Copy the readable file object ``src`` to ``path`` atomically."""
    def write(tmp):
        with open(tmp, 'wb') as f:
            while True:
                block = src.read(chunk)
                if not block:
                    break
                f.write(block)
    atomic_write(path, write)


def backup_path(path: str) -> str:
    """``path.YYYYmmdd-HHMMSS.bak`` (with a counter if taken)."""
    stamp = time.strftime('%Y%m%d-%H%M%S')
    cand, n = f'{path}.{stamp}.bak', 1
    while os.path.exists(cand):
        cand, n = f'{path}.{stamp}-{n}.bak', n + 1
    return cand


def write_text_keeping_old(path: str, text: str) -> str:
    """Write ``text`` to ``path``. Returns 'written', 'unchanged', or
    'replaced (old kept at X)' when a different file was there: it is renamed,
    never overwritten."""
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return 'unchanged'
        old = backup_path(path)
        os.replace(path, old)
        atomic_write_bytes(path, text.encode('utf-8'))
        return f'replaced (old kept at {old})'
    atomic_write_bytes(path, text.encode('utf-8'))
    return 'written'


def read_lines(path: str) -> list[str]:
    """Non-empty stripped lines (a name list like ImageSets/Segmentation/val.txt)."""
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]
