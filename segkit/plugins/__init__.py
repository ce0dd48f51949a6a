"""Everything a config names by ``type=``, registered in mmseg's / mmengine's
registries on import: configs need one ``custom_imports`` entry, ``'segkit.plugins'``.

hooks/        SafeCheckpointHook, NonFiniteLossHook, ScheduleFollowsConfigHook
per_class     PerClassIoUMetric + PerClassMetricsHook (per-class IoU to TensorBoard)
tensorboard   TensorboardHook (one run per work dir, grouped tags, layout, images)
models/       losses, MobileNetV3OS32, fp32 deformable attention under AMP
transforms    faster data transforms
optim         SegkitAmpOptimWrapper (AMP on CPU and GPU, overflow-aware)
runner        SegkitRunner (applies ``fast_paths``)
and mmdet's models (Mask2Former's head, pixel decoder and losses live in mmdet).
"""
import mmdet.models  # noqa: F401

from segkit.plugins import (hooks, models, optim, per_class, runner, tensorboard,  # noqa: F401
                            transforms)
