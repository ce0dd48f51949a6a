"""segkit's mmengine hooks, registered in mmseg's HOOKS registry on import
(configs list ``segkit.hooks`` in ``custom_imports``)."""
from .checkpoint import SafeCheckpointHook
from .nan_guard import NonFiniteLossHook
from .per_class import PerClassMetricsHook
from .sample_trace import SampleTraceHook
from .schedule import ScheduleFollowsConfigHook

__all__ = ['NonFiniteLossHook', 'PerClassMetricsHook', 'SafeCheckpointHook',
           'SampleTraceHook', 'ScheduleFollowsConfigHook']
