"""segkit's mmengine hooks, registered in mmseg's HOOKS registry on import
(configs list ``segkit.hooks`` in ``custom_imports``)."""
from .per_class import PerClassMetricsHook

__all__ = ['PerClassMetricsHook']
