"""Stepping LR schedulers outside a training loop (resume replay, run analysis)."""


def step_one_iteration(scheds, it: int, epoch_length: int) -> None:
    """Step ``scheds`` as ParamSchedulerHook does after iteration ``it`` (0-based):
    iteration-based ones every iteration, epoch-based ones at each epoch end."""
    for s in scheds:
        if not s.by_epoch:
            s.step()
    if (it + 1) % epoch_length == 0:
        for s in scheds:
            if s.by_epoch:
                s.step()
