"""segkit's model parts, registered in mmseg's MODELS registry on import."""
from . import amp_safe  # noqa: F401  (mmcv's deformable attention in fp32 under AMP)
from .backbones import MobileNetV3OS32
from .losses import ClassWeightedCrossEntropyLoss, IgnoreSafeFocalLoss

__all__ = ['ClassWeightedCrossEntropyLoss', 'IgnoreSafeFocalLoss', 'MobileNetV3OS32']
