"""segkit's model parts, registered in mmseg's MODELS registry on import."""
from segkit.plugins.models import amp_safe  # noqa: F401  (mmcv's deformable attention in fp32 under AMP)
from segkit.plugins.models import ops_routing  # noqa: F401  (kernel or PyTorch path per op and device)
from segkit.plugins.models.backbones import MobileNetV3OS32
from segkit.plugins.models.losses import ClassWeightedCrossEntropyLoss, IgnoreSafeFocalLoss

__all__ = ['ClassWeightedCrossEntropyLoss', 'IgnoreSafeFocalLoss', 'MobileNetV3OS32']
