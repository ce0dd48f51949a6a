"""One run per work dir: an exclusive ``fcntl.flock`` on ``<work_dir>/.segkit.lock``, which
the OS releases when its process dies (a killed run's lock file never blocks)."""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from segkit.errors import SegkitError

LOCK_NAME = '.segkit.lock'
_held: dict = {}  # work dir -> open file object (the lock lives as long as it does)


def _lock_or_refuse(f, work_dir: str, path: Path) -> None:
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        try:
            info = json.loads(path.read_text() or '{}')
        except (OSError, ValueError):
            info = {}
        holder = (f"PID {info.get('pid', '?')} on {info.get('host', '?')}, started "
                  f"{info.get('started', '?')}" if info else 'another run (it is starting now)')
        raise SegkitError(f'work dir {work_dir} is in use by another run ({holder}): wait for '
                          'it to finish or stop it, or pass --work-dir NEW_DIR') from None


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
        _lock_or_refuse(f, work_dir, path)
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def acquire(work_dir: str) -> None:
    """Take ``work_dir``'s lock for the life of this process (idempotent)."""
    key = str(Path(work_dir).resolve())
    if key in _held:
        return
    os.makedirs(work_dir, exist_ok=True)
    path = Path(work_dir) / LOCK_NAME
    f = open(path, 'a+')  # never truncate before holding the lock
    _lock_or_refuse(f, work_dir, path)
    f.seek(0)
    f.truncate()
    f.write(json.dumps({'pid': os.getpid(), 'host': socket.gethostname(),
                        'started': time.strftime('%Y-%m-%d %H:%M:%S %Z')}) + '\n')
    f.flush()
    _held[key] = f
