"""On resume, the LR schedule follows the config, not the checkpoint."""
from __future__ import annotations

import copy

import torch
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmengine.registry import PARAM_SCHEDULERS
from mmseg.registry import HOOKS

_SHAPE = ('begin', 'end', 'T_max', 'total_iters', 'total_steps', 'milestones', 'step_size',
          'eta_min', 'eta_max', 'power', 'gamma', 'start_factor', 'end_factor')


def step_one_iteration(scheds, it: int, epoch_length: int) -> None:
    """Step ``scheds`` as ParamSchedulerHook does after iteration ``it`` (0-based):
    iteration-based ones every iteration, epoch-based ones at each epoch end (this
    replay and run analysis step schedulers outside a training loop)."""
    epoch_end = (it + 1) % epoch_length == 0
    for s in sorted(scheds, key=lambda s: s.by_epoch):  # iteration-based ones first
        if not s.by_epoch or epoch_end:
            s.step()


def _shape(sched) -> dict:
    return {k: getattr(sched, k) for k in _SHAPE if hasattr(sched, k)}


def _fresh_optimizer(optimizer):
    """A one-parameter-per-group copy of ``optimizer`` at its initial values."""
    groups = []
    for g in optimizer.param_groups:
        g = {k: v for k, v in g.items() if k != 'params'}
        g['lr'] = g.get('initial_lr', g['lr'])
        if 'initial_momentum' in g and 'betas' in g:
            g['betas'] = (g['initial_momentum'], g['betas'][1])
        elif 'initial_momentum' in g:
            g['momentum'] = g['initial_momentum']
        g['params'] = [torch.nn.Parameter(torch.zeros(1))]
        groups.append(g)
    return type(optimizer)(groups)


@HOOKS.register_module()
class ScheduleFollowsConfigHook(Hook):
    """mmengine restores each scheduler's boundaries from the checkpoint, so a resume with
    a longer schedule (``max_epochs`` 200 -> 250, ``--max-epochs``) would train the extra
    epochs at the final LR. This replays the config's schedule up to the resumed iteration
    and continues on it (the LR the new schedule gives here), and says so."""
    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        scheds = runner.param_schedulers
        cfg_scheds = runner.cfg.get('param_scheduler')
        if runner.iter == 0 or not scheds or not cfg_scheds or isinstance(scheds, dict):
            return
        cfg_scheds = [cfg_scheds] if isinstance(cfg_scheds, dict) else list(cfg_scheds)
        length = len(runner.train_dataloader)
        real_opt = runner.optim_wrapper.optimizer
        dummy = OptimWrapper(_fresh_optimizer(real_opt))
        fresh = [PARAM_SCHEDULERS.build(copy.deepcopy(dict(s)), default_args=dict(
            optimizer=dummy, epoch_length=length)) for s in cfg_scheds]
        if len(fresh) != len(scheds) or all(_shape(a) == _shape(b)
                                            for a, b in zip(fresh, scheds)):
            return
        old_lr = real_opt.param_groups[0]['lr']
        for it in range(runner.iter):  # what ParamSchedulerHook would have done
            step_one_iteration(fresh, it, length)
        for real, new in zip(scheds, fresh):
            real.load_state_dict(new.state_dict())
        for g_real, g_new in zip(real_opt.param_groups, dummy.optimizer.param_groups):
            g_real.update({k: g_new[k] for k in ('lr', 'momentum', 'betas') if k in g_new})
        ends = ', '.join(f'{type(s).__name__} {s.begin}-{s.end}' for s in fresh)
        runner.logger.warning(
            f'resumed with a different schedule than the checkpoint: following the '
            f'config ({ends} iterations); LR {old_lr:.4g} -> '
            f"{real_opt.param_groups[0]['lr']:.4g} at iteration {runner.iter}")
