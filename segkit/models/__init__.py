"""segkit's model parts, registered in mmseg's MODELS registry on import."""
from .losses import FileWeightedCrossEntropyLoss

__all__ = ['FileWeightedCrossEntropyLoss']
