"""Per-class IoU and accuracy to TensorBoard and the run's JSON log, every validation."""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmseg.registry import HOOKS

from ..metrics import INFO_KEY


@HOOKS.register_module()
class PerClassMetricsHook(Hook):
    """Writes ``IoU_per_class/<class>`` and ``Acc_per_class/<class>`` scalars (one
    TensorBoard group each, so the scalar page stays readable) and the same values
    as one line of ``vis_data/<timestamp>.json``. Needs :class:`PerClassIoUMetric`.
    """
    priority = 'BELOW_NORMAL'  # after LoggerHook has written the summary line

    def after_val_epoch(self, runner, metrics=None) -> None:
        hub = MessageHub.get_current_instance()
        info = hub.get_info(INFO_KEY)
        if not info or runner.rank != 0:
            return
        scalars = {}
        for name, iou, acc in zip(info['classes'], info['IoU'], info['Acc']):
            if iou is not None:  # absent from this split: no value, not 0
                scalars[f'IoU_per_class/{name}'] = iou
            if acc is not None:
                scalars[f'Acc_per_class/{name}'] = acc
        logger_hook = next((h for h in runner.hooks if type(h).__name__ == 'LoggerHook'), None)
        by_epoch = getattr(logger_hook, 'log_metric_by_epoch', True)
        step = runner.epoch if by_epoch else runner.iter
        runner.visualizer.add_scalars(scalars, step=step,
                                      file_path=f'{runner.timestamp}.json')
        hub.update_info(INFO_KEY, None)
