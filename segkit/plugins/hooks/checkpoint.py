"""Checkpoints that a kill can never corrupt, and best checkpoints that resume.

mmengine's CheckpointHook deletes old checkpoints (and the previous best) before saving,
writes in place (a kill mid-save leaves a truncated file ``last_checkpoint`` may name) and
saves the best without optimizer state. This hook writes each checkpoint to a temporary
file, fsyncs and renames it into place, then updates ``last_checkpoint`` the same way, and
only then deletes old ones; best checkpoints resume (optimizer and scheduler state).
"""
from __future__ import annotations

import os
import os.path as osp
import re

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmseg.registry import HOOKS

from segkit.errors import SegkitError
from segkit.io import atomic_write_bytes, commit, tmp_path


def _out_of_space(err: BaseException) -> bool:
    """ENOSPC, as an OSError or inside torch's zip writer's RuntimeError."""
    import errno
    while err is not None:
        if (isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)) or (
                isinstance(err, RuntimeError) and re.search('No space left|file write failed',
                                                            str(err))):
            return True
        err = err.__cause__ or err.__context__
    return False


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook (same arguments) with atomic, ordered saves."""

    def _atomic_save(self, runner, filename: str, **kwargs) -> None:
        tmp = tmp_path(osp.join(self.out_dir, filename))
        try:
            runner.save_checkpoint(self.out_dir, osp.basename(tmp), self.file_client_args,
                                   backend_args=self.backend_args, **kwargs)
            if is_main_process():
                commit(tmp, osp.join(self.out_dir, filename), durable=True)
        except BaseException as err:
            if osp.exists(tmp):
                os.remove(tmp)
            if _out_of_space(err):
                raise self._no_space(runner, filename) from None
            raise

    def _no_space(self, runner, filename: str) -> SegkitError:
        import logging
        logging.raiseExceptions = False  # the log file cannot be written either
        last = osp.join(runner.work_dir, 'last_checkpoint')
        kept = open(last).read().strip() if osp.isfile(last) else 'none yet'
        from segkit.engine.cli import resume_command
        return SegkitError(
            f'no space left on the disk of {self.out_dir} while saving {filename} (the '
            f'partial file is removed; the last good checkpoint, {kept}, and '
            'last_checkpoint are intact): free space, then continue with '
            f'{resume_command(runner.work_dir)}')

    def _save_checkpoint_with_step(self, runner, step, meta):
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        stale = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        # 1. the new checkpoint, complete, under its final name
        self._atomic_save(runner, ckpt_filename, save_optimizer=self.save_optimizer,
                          save_param_scheduler=self.save_param_scheduler, meta=meta,
                          by_epoch=self.by_epoch, **self.args)
        if not is_main_process():
            return
        # 2. then last_checkpoint points to it; 3. only then old ones go
        try:
            atomic_write_bytes(osp.join(runner.work_dir, 'last_checkpoint'),
                               self.last_ckpt.encode(), durable=True)
        except OSError as err:
            if _out_of_space(err):
                raise self._no_space(runner, 'last_checkpoint') from None
            raise
        for old in stale:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if not self.save_best:
            return
        if 'auto' in self.key_indicators:
            self._init_rule(self.rules, [list(metrics.keys())[0]])
        step, cur = (runner.epoch, 'epoch') if self.by_epoch else (runner.iter, 'iter')
        meta = dict(epoch=runner.epoch, iter=runner.iter)
        updated, single = False, len(self.key_indicators) == 1
        for key, rule in zip(self.key_indicators, self.rules):
            score = metrics.get(key)
            suffix = '' if single else f'_{key}'
            score_key, ckpt_key = f'best_score{suffix}', f'best_ckpt{suffix}'
            best = runner.message_hub.get_info(score_key, self.init_value_map[rule])
            if score is None or not self.is_better_than[key](score, best):
                continue
            updated = True
            runner.message_hub.update_info(score_key, score)
            old_path = self.best_ckpt_path if single else self.best_ckpt_path_dict.get(key)
            name = f'best_{key}_{self.filename_tmpl.format(step)}'.replace('/', '_')
            new_path = self.file_backend.join_path(self.out_dir, name)
            if single:
                self.best_ckpt_path = new_path
            else:
                self.best_ckpt_path_dict[key] = new_path
            runner.message_hub.update_info(ckpt_key, new_path)
            # resumable: optimizer and scheduler state included
            self._atomic_save(runner, name, save_optimizer=True, save_param_scheduler=True,
                              meta=meta, by_epoch=self.by_epoch)
            if is_main_process() and old_path and old_path != new_path and \
                    self.file_backend.isfile(old_path):
                self.file_backend.remove(old_path)
            runner.logger.info(f'The best checkpoint with {score:0.4f} {key} at {step} '
                               f'{cur} is saved to {name}.')
        # store the new best score in the regular checkpoint too (as mmengine does)
        if updated and self.last_ckpt is not None:
            self._save_checkpoint_with_step(runner, step, meta)
