"""One run per work dir: an exclusive ``fcntl.flock`` on ``<work_dir>/.segkit.lock``.

The OS releases a flock when its process dies, so a lock file left by a killed
run never blocks. :func:`check_unlocked` only reads (preflight: a refused run
leaves the work dir byte-identical); :func:`acquire` runs after preflight passed,
creates the file, takes the lock and writes who holds it (PID, host, start time).
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Optional

from segkit.errors import SegkitError

LOCK_NAME = '.segkit.lock'
_held: dict = {}  # work dir -> open file object (the lock lives as long as it does)


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or '{}')
    except (OSError, ValueError):
        info = {}
    if not info:
        return 'another run (it is starting now)'
    return (f"PID {info.get('pid', '?')} on {info.get('host', '?')}, started "
            f"{info.get('started', '?')}")


def _refusal(work_dir: str, path: Path) -> SegkitError:
    return SegkitError(
        f'work dir {work_dir} is in use by another run ({_holder(path)}): wait for it '
        'to finish or stop it, or pass --work-dir NEW_DIR')


def _try_lock(f) -> bool:
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def check_unlocked(work_dir: str) -> None:
    """Refuse if a live run holds ``work_dir``'s lock; writes nothing."""
    if str(Path(work_dir).resolve()) in _held:
        return
    path = Path(work_dir) / LOCK_NAME
    try:
        f = open(path, 'rb')
    except OSError:
        return  # no lock file (or unreadable: acquire() will tell)
    with f:
        if not _try_lock(f):
            raise _refusal(work_dir, path)
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def acquire(work_dir: str) -> Optional[Path]:
    """Take ``work_dir``'s lock for the life of this process (idempotent)."""
    key = str(Path(work_dir).resolve())
    if key in _held:
        return None
    os.makedirs(work_dir, exist_ok=True)
    path = Path(work_dir) / LOCK_NAME
    f = open(path, 'a+')  # never truncate before holding the lock
    if not _try_lock(f):
        f.close()
        raise _refusal(work_dir, path)
    f.seek(0)
    f.truncate()
    f.write(json.dumps({'pid': os.getpid(), 'host': socket.gethostname(),
                        'started': time.strftime('%Y-%m-%d %H:%M:%S %Z')}) + '\n')
    f.flush()
    _held[key] = f
    return path
