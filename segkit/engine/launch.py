"""Launch helpers shared by the shell launchers, preflight and doctor: free ports, GPU counts.

    python -m segkit.engine.launch free-port          # prints a free TCP port
    python -m segkit.engine.launch port-free PORT     # exit 0 if PORT can be bound
    python -m segkit.engine.launch check-gpus N       # exit 2 with a one-line error if N > visible
    python -m segkit.engine.launch torchrun TORCHRUN [ARGS...] TOOL [TOOL ARGS...]
        # the shell launchers' torchrun: TOOL --preflight-only once, then torchrun; a
        # rank's one-line error (SegkitError) ends the output, exit 2, no ChildFailedError
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile

from segkit.engine.cli import ERROR_DIR_ENV


def free_port(host: str = '') -> int:
    """A TCP port the OS reports free now (torchrun binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(port: int, host: str = '') -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def visible_gpus() -> int:
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def gpu_request_error(requested: int, visible: int | None = None,
                      cvd: str | None = '') -> str | None:
    """Why ``requested`` GPUs (processes on this node) cannot be used here, or None (without
    CUDA the launchers start CPU processes). ``visible`` / ``cvd`` default to this process's
    torch and CUDA_VISIBLE_DEVICES."""
    if requested < 1:
        return f'GPUS must be >= 1, got {requested}'
    visible = visible_gpus() if visible is None else visible
    cvd = os.environ.get('CUDA_VISIBLE_DEVICES') if cvd == '' else cvd
    named = [d for d in (cvd or '').split(',') if d.strip() not in ('', '-1')]
    if visible == 0:
        if named:
            return (f'CUDA_VISIBLE_DEVICES={cvd} names {len(named)} GPU(s) but torch sees '
                    'none (a CPU build of torch, or no driver): unset CUDA_VISIBLE_DEVICES '
                    'to train with CPU processes, or run make doctor')
        return None
    if requested > visible:
        where = f' (CUDA_VISIBLE_DEVICES={cvd})' if cvd is not None else ''
        return (f'{requested} process(es) on this node need {requested} GPU(s) but only '
                f'{visible} are visible{where}: lower GPUS or widen CUDA_VISIBLE_DEVICES')
    return None


def _torchrun_args(argv: list[str]) -> list[str]:
    """Drop the torchrun command words (``/x/torchrun`` or ``python -m torch.distributed.run``)."""
    if argv and argv[0].endswith('torchrun'):
        return argv[1:]
    if argv[1:3] == ['-m', 'torch.distributed.run']:
        return argv[3:]
    return argv


def preflight_once(args) -> int:
    """TOOL --preflight-only in one plain process, with the launch's world size (and
    its node's first rank: only global rank 0 checks the work dir's lock)."""
    script_args = [a for a in args.training_script_args if a not in ('--launcher', 'pytorch')
                   and not a.startswith('--launcher=')]
    nproc = int(args.nproc_per_node) if str(args.nproc_per_node).isdigit() else 1
    nnodes = int(str(args.nnodes).split(':')[-1])
    env = dict(os.environ, WORLD_SIZE=str(nproc * nnodes),
               RANK=str(int(args.node_rank) * nproc), LOCAL_RANK='0')
    # stdout: rank 0 repeats every line; stderr: the one-line error
    return subprocess.run([sys.executable, args.training_script, *script_args,
                           '--preflight-only'], env=env, stdout=subprocess.DEVNULL).returncode


def torchrun(argv: list[str]) -> int:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run
    args = parse_args(_torchrun_args(argv))
    if os.environ.get('SEGKIT_SKIP_PREFLIGHT') != '1':
        code = preflight_once(args)
        if code:
            return code
    with tempfile.TemporaryDirectory(prefix='segkit-errors-') as folder:
        os.environ[ERROR_DIR_ENV] = folder
        try:
            run(args)
        except ChildFailedError:
            lines = sorted(os.listdir(folder), key=lambda n: int(n[4:] or 0))
            if not lines:
                raise  # a real crash: torchrun's report names the rank and traceback
            with open(os.path.join(folder, lines[0])) as f:
                print(f.read().strip(), file=sys.stderr, flush=True)
            return 2
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ['torchrun']:
        return torchrun(argv[1:])
    if argv[:1] == ['free-port']:
        print(free_port())
        return 0
    if argv[:1] == ['port-free'] and len(argv) == 2:
        return int(not port_is_free(int(argv[1])))
    if argv[:1] == ['check-gpus'] and len(argv) == 2:
        err = gpu_request_error(int(argv[1]))
        if err:
            print(f'error: {err}', file=sys.stderr)
            return 2
        print('cuda' if visible_gpus() else 'cpu')
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
