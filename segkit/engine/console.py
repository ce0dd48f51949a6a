"""A quiet console: the full config, the environment dump and the paramwise table go to
the run's log file only; the console gets a short :func:`header`, then the training lines."""
from __future__ import annotations

import logging
import os.path as osp
import warnings

# console-only noise: the file log keeps these records
_FILE_ONLY = ('Config:\n', '\n' + '-' * 60 + '\nSystem environment:', 'paramwise_options -- ',
              'Checkpoints will be saved to', 'Hooks will be executed in the following order',
              'Distributed training is not used', '"FileClient" will be deprecated',
              '"HardDiskBackend" is the alias')

# harmless upstream warnings that every segkit run would print (mmseg/mmengine's own)
_UPSTREAM = (r'``build_loss`` would be deprecated soon', r'Default ``avg_non_ignore`` is False',
             r'The draw is False, it means that the hook for visualization')


class _FileOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_FILE_ONLY))


def quiet_console(logger: logging.Logger) -> logging.Logger:
    """Keep the dumps off ``logger``'s console handler (stdout), not off its file."""
    for h in logger.handlers:
        if type(h) is logging.StreamHandler and not any(isinstance(f, _FileOnly)
                                                        for f in h.filters):
            h.addFilter(_FileOnly())
    for pattern in _UPSTREAM:
        warnings.filterwarnings('ignore', message=pattern)
    return logger


def header(runner, config: str, world: int) -> list:
    """config, work dir, GPUs x batch, epochs, iterations per epoch, TensorBoard."""
    from segkit.plugins.tensorboard import RUN_DIR
    batch = runner.cfg.train_dataloader.get('batch_size', 1)
    per_epoch = len(runner.train_dataloader)
    loop = runner.cfg.train_cfg
    length = (f'{loop.max_epochs} epoch(s), {per_epoch} iterations per epoch' if 'max_epochs' in loop
              else f'{loop.get("max_iters")} iterations ({per_epoch} per epoch)')
    board = osp.join(runner.work_dir, RUN_DIR)
    return [
        f'config:      {config}',
        f'work dir:    {runner.work_dir}   (full config + log: {runner.log_dir})',
        f'batch:       {world} process(es) x {batch} = {world * batch} images per iteration',
        f'schedule:    {length}',
        f'TensorBoard: {board}   (scripts/tensorboard.sh {runner.work_dir})']
