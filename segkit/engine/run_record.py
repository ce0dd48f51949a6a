"""A record of how a run was started, written beside its logs."""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

PACKAGES = ('torch', 'mmcv', 'mmengine', 'mmsegmentation', 'mmdet', 'segkit', 'numpy')


def git_state(path: str) -> dict:
    """Commit and dirty flag of the git checkout holding ``path`` (if any)."""
    def git(*args):
        return subprocess.run(['git', '-C', path, *args], capture_output=True,
                              text=True, timeout=20)
    try:
        head = git('rev-parse', 'HEAD')
        if head.returncode != 0:
            return {'commit': None}
        dirty = git('status', '--porcelain', '--untracked-files=no')
        return {'commit': head.stdout.strip(), 'dirty': bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {'commit': None}


def _version(name: str):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def write_run_record(log_dir: str, cfg, argv=None, extra=None) -> Path:
    """``<log_dir>/run_record.json``: command line, git, versions, launch, resolved config."""
    import torch
    record = {
        'time': time.strftime('%Y-%m-%d %H:%M:%S'),
        'command': [sys.executable] + list(sys.argv if argv is None else argv),
        'cwd': os.getcwd(),
        'host': socket.gethostname(),
        'git': git_state(str(Path(__file__).resolve().parents[1])),
        'versions': {'python': platform.python_version(), **{p: _version(p) for p in PACKAGES}},
        'cuda': torch.version.cuda,
        'gpus': [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        'world_size': int(os.environ.get('WORLD_SIZE', '1')),
        'cuda_visible_devices': os.environ.get('CUDA_VISIBLE_DEVICES'),
        **(extra or {}),
        'config': 'config.py',
    }
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    cfg.dump(str(Path(log_dir) / 'config.py'))  # the resolved config of this (sub-)run
    path = Path(log_dir) / 'run_record.json'
    path.write_text(json.dumps(record, indent=2) + '\n')
    return path
