"""Distributed set-up that also works without CUDA: mmengine's ``init_dist`` always calls
``torch.cuda.set_device``, so on CPU a gloo group is made here before the Runner (which then
skips its own init), the model wrapped with ``device_ids=None`` and SyncBN made BN."""
from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

from segkit.errors import SegkitError


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if initialized() else int(os.environ.get('WORLD_SIZE', '1'))


def rank() -> int:
    if initialized():
        return dist.get_rank()
    # before init: torchrun sets RANK, srun SLURM_PROCID (mmengine copies it later)
    return int(os.environ.get('RANK') or os.environ.get('SLURM_PROCID') or '0')


def replace_syncbn(node):
    """SyncBN -> BN in a model config, in place (SyncBN needs CUDA)."""
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
        node = list(node.values())
    if isinstance(node, (list, tuple)):
        for v in node:
            replace_syncbn(v)


def setup_distributed(cfg, launcher: str) -> None:
    """Prepare ``cfg`` (and, on CPU, the process group) for ``launcher``."""
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return  # CUDA: mmengine sets the device (LOCAL_RANK) and NCCL from env_cfg
    if launcher != 'pytorch':
        raise SegkitError(f'--launcher {launcher} needs CUDA GPUs; on a CPU-only '
                          'machine use tools/dist_train.sh (torchrun, gloo)')
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if var not in os.environ:
            raise SegkitError(f'--launcher pytorch but ${var} is unset: start it with '
                              'tools/dist_train.sh (torchrun sets it)')
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    if not dist.is_initialized():
        dist.init_process_group('gloo', timeout=datetime.timedelta(
            seconds=dist_cfg.get('timeout', 1800)))
    cfg.model_wrapper_cfg = dict(
        type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    replace_syncbn(cfg.model)
