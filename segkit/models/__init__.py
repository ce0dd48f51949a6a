"""segkit's model parts, registered in mmseg's MODELS registry on import."""
from .backbones import MobileNetV3OS32
from .losses import ClassWeightedCrossEntropyLoss, IgnoreSafeFocalLoss

__all__ = ['ClassWeightedCrossEntropyLoss', 'IgnoreSafeFocalLoss', 'MobileNetV3OS32']
