"""segkit's model parts, registered in mmseg's MODELS registry on import."""
from .backbones import MobileNetV3OS32
from .losses import FileWeightedCrossEntropyLoss

__all__ = ['FileWeightedCrossEntropyLoss', 'MobileNetV3OS32']
