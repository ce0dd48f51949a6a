"""segkit's mmengine hooks, registered in mmseg's HOOKS registry on import
(configs list ``segkit.hooks`` in ``custom_imports``)."""
from .per_class import PerClassMetricsHook
from .sample_trace import SampleTraceHook

__all__ = ['PerClassMetricsHook', 'SampleTraceHook']
