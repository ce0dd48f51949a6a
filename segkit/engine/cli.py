"""What every tool shares: the one-line error contract, and the train/test flags (mmseg's
flags and work-dir rule, so mmseg's docs still apply, plus segkit's additions)."""
from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import threading
import traceback
from typing import Callable, Optional

from segkit.errors import SegkitError

# set by a launcher (segkit.engine.launch torchrun): where a rank leaves its one-line
# error, so the launcher can print it last instead of torchrun's ChildFailedError
ERROR_DIR_ENV = 'SEGKIT_ERROR_DIR'
_DROPPED = ('--work-dir', '--launcher', '--local-rank', '--local_rank')  # resume_command sets
_resume_work_dir: Optional[str] = None
_interrupted = False


def shell_command(argv) -> str:
    """The one way a command is printed: every word shell-quoted."""
    return shlex.join(str(a) for a in argv)


def _on_sigint(signum, frame):
    global _interrupted
    _interrupted = True  # a library may turn the KeyboardInterrupt into another error
    raise KeyboardInterrupt


def set_resume_hint(work_dir: Optional[str]) -> None:
    """While a training runs, Ctrl-C and crashes end with the command that resumes it."""
    global _resume_work_dir
    _resume_work_dir = work_dir
    if work_dir and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)


def resume_command(work_dir: str, argv=None) -> str:
    """This process's own command line, with ``--work-dir WORK_DIR --resume``."""
    argv = list(sys.argv if argv is None else argv)
    out, skip = [], False
    for a, after in zip(argv, argv[1:] + ['']):
        if skip:
            skip = False
        elif a in _DROPPED or a == '--resume':  # and their value (a --resume CHECKPOINT's)
            skip = a != '--resume' or (after.endswith('.pth') and not after.startswith('-'))
        elif not a.startswith(tuple(f'{flag}=' for flag in (*_DROPPED, '--resume'))):
            out.append(a)
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world > 1:  # started by tools/dist_train.sh CONFIG GPUS
        cmd = ['tools/dist_train.sh', out[1], str(world), *out[2:]]
    else:
        cmd = ['python', os.path.relpath(out[0]) if out else 'tools/train.py', *out[1:]]
    return shell_command(cmd + ['--work-dir', work_dir, '--resume'])


def _report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
    folder = os.environ.get(ERROR_DIR_ENV)
    if folder:
        with contextlib.suppress(OSError), \
                open(os.path.join(folder, f"rank{os.environ.get('RANK', '0')}"), 'w') as f:
            f.write(line + '\n')


def run_tool(main: Callable[[], int | None]) -> None:
    """Call ``main``; a :class:`SegkitError` becomes ``error: ...`` and exit 2."""
    try:
        code = main()
    except SegkitError as err:
        _report(f'error: {err}')
        sys.exit(2)
    except BaseException as err:
        if _interrupted or isinstance(err, KeyboardInterrupt):
            _interrupted_exit()
        if _resume_work_dir and not isinstance(err, SystemExit):
            traceback.print_exc()
            _report(f'error: training crashed (traceback above); after fixing the '
                    f'cause, continue with {resume_command(_resume_work_dir)}')
            sys.exit(1)
        raise
    sys.exit(code or 0)


def _interrupted_exit() -> None:
    hint = f': continue with {resume_command(_resume_work_dir)}' if _resume_work_dir else ''
    _report(f'interrupted{hint}')
    sys.exit(130)


def add_cfg_options(p: argparse.ArgumentParser, example: str = 'train_dataloader.'
                    'batch_size=2 train_cfg.max_epochs=3') -> None:
    """mmseg's ``--cfg-options key=value ...`` (mmengine's DictAction)."""
    from mmengine.config import DictAction
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help=f'override config settings, key=value (e.g. {example})')


def add_speed_flags(p: argparse.ArgumentParser) -> None:
    """The fast-path switches (engine.fast_paths); unset (None) keeps the config's choice."""
    p.add_argument('--amp', nargs='?', const='fp16', default=None,
                   choices=['fp16', 'bf16', 'fp32'],
                   help='automatic mixed precision (bare --amp = fp16, as in mmseg; bf16 '
                   "needs Ampere+ or a CPU; fp32 turns a config's AMP off)")
    p.add_argument('--compile', nargs='?', const='auto', default=None,
                   choices=['auto', 'backbone', 'model', 'none'],
                   help='torch.compile module forwards (auto: backbone + plain heads)')
    p.add_argument('--compile-mode', help="torch.compile mode (e.g. 'max-autotune')")
    p.add_argument('--compile-backend', help='torch.compile backend (default inductor)')
    for flag, text in (('channels-last', 'channels-last memory format for convolutions'),
                       ('fused', 'fused AdamW/Adam/SGD kernels where the device supports them'),
                       ('cudnn-benchmark', "cuDNN autotuning (default: the config's env_cfg)"),
                       ('fast-attention', 'fused attention kernels (need_weights=False)'),
                       ('tf32', 'TF32 matmuls/convolutions on Ampere+ GPUs')):
        p.add_argument(f'--{flag}', action=argparse.BooleanOptionalAction, default=None, help=text)


def build_parser(mode: str) -> argparse.ArgumentParser:
    """Flags of ``tools/train.py`` (mode='train') or ``tools/test.py`` (mode='test')."""
    assert mode in ('train', 'test')
    p = argparse.ArgumentParser(
        prog=f'tools/{mode}.py',
        description='Train a segmentor' if mode == 'train' else
        'Test (and evaluate) a segmentor; prints per-class IoU and writes metrics JSON')
    p.add_argument('config', help='config file (or mmseg::path/in/model/zoo.py)')
    if mode == 'test':
        p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--work-dir', help='where logs and checkpoints go (default: the '
                   "config's work_dir, else work_dirs/<config stem>)")
    if mode == 'train':
        p.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT',
                       help='resume: bare = the newest checkpoint in the work dir that '
                       'loads; or a checkpoint path')
        add_speed_flags(p)
        p.add_argument('--auto-scale-lr', action='store_true',
                       help="scale the LR linearly: lr x (GPUs x batch of this launch) / "
                       "auto_scale_lr.base_batch_size (the batch the LR was tuned for; "
                       "else the config name's GxbB)")
        p.add_argument('--max-epochs', type=int, metavar='N',
                       help='train N epochs, stretching the LR schedule with it')
        p.add_argument('--no-preflight', action='store_true',
                       help='skip the checks of data, weights and work dir before building')
    else:
        p.add_argument('--out', help='directory to save the predicted label maps (PNG)')
        p.add_argument('--show', action='store_true', help='show prediction results')
        p.add_argument('--show-dir', help='directory where painted images are saved '
                       '(under work_dir/<timestamp>/)')
        p.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
        p.add_argument('--tta', action='store_true', help='test-time augmentation')
        p.add_argument('--metrics-json', help='write the metrics here (default: '
                       '<work_dir>/<timestamp>/test_metrics.json)')
    p.add_argument('--partial-weights', action='store_true',
                   help='allow loading weights that fit under 90%% of the part they load '
                   'into (a deliberate partial load); resume still needs an exact fit')
    p.add_argument('--preflight-only', action='store_true',
                   help='run the checks, write nothing and exit (the launchers run this '
                   'once before starting the processes)')
    add_cfg_options(p)
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                   default='none', help='job launcher (dist_train.sh sets pytorch)')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return p


def parse_args(mode: str, argv=None) -> argparse.Namespace:
    args = build_parser(mode).parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
