"""segkit's mmengine hooks (registered in mmseg's HOOKS on import)."""
from segkit.plugins.hooks.checkpoint import SafeCheckpointHook
from segkit.plugins.hooks.nan_guard import NonFiniteLossHook
from segkit.plugins.hooks.resume_schedule import ScheduleFollowsConfigHook

__all__ = ['NonFiniteLossHook', 'SafeCheckpointHook', 'ScheduleFollowsConfigHook']
