"""Backbones the config variants need that mmseg lacks."""
import torch.nn as nn
from mmcv.cnn.bricks import Conv2dAdaptivePadding
from mmseg.models.backbones import MobileNetV3
from mmseg.registry import MODELS


@MODELS.register_module()
class MobileNetV3OS32(MobileNetV3):
    """mmseg's MobileNetV3 (output stride 8, TF-style "same" padding) with torchvision's
    geometry for Mask2Former: strides 4/8/16/32 and the symmetric padding torchvision's
    weights expect, mmseg's module names kept (converted weights load strictly). Large:
    out_indices=(3, 6, 12, 16) give 24/40/112/960 channels at 4/8/16/32."""

    def _make_layer(self):
        layers = super()._make_layer()
        restride = (7, 13) if self.arch == 'large' else (4, 9)
        for i, name in enumerate(layers):
            layer = getattr(self, name)
            module = layer.depthwise_conv if hasattr(layer, 'depthwise_conv') else layer
            conv = module.conv
            stride = 2 if i in restride else conv.stride[0]
            k = conv.kernel_size[0]
            plain = nn.Conv2d(conv.in_channels, conv.out_channels, k, stride=stride,
                              padding=(k - 1) // 2, dilation=1, groups=conv.groups,
                              bias=conv.bias is not None)
            if isinstance(conv, Conv2dAdaptivePadding) or conv.dilation != (1, 1) \
                    or stride != conv.stride[0]:
                module.conv = plain
        return layers
