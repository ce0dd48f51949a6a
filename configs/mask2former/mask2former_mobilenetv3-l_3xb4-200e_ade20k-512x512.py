# Variant: Mask2Former with a MobileNetV3-Large backbone (5.4 M backbone parameters vs
# Swin-T's 28 M): a fast, small model for constrained GPUs or inference. Its weights
# come from torchvision's DeepLabV3-MobileNetV3 (COCO, VOC labels), converted:
#   python tools/convert_weights.py mobilenetv3 deeplabv3_mobilenet_v3_large-fc3c493d.pth
_base_ = ['./mask2former_swin-t_3xb4-200e_ade20k-512x512.py']

pretrained = 'checkpoints/mobilenet_v3_large_deeplabv3_mmseg.pth'  # checkpoints/README.md
model = dict(
    backbone=dict(
        _delete_=True,
        # segkit's MobileNetV3: torchvision's stride-32 geometry (mmseg's is dilated, OS 8)
        type='MobileNetV3OS32', arch='large', out_indices=(3, 6, 12, 16),
        norm_cfg=dict(type='SyncBN', eps=0.001, requires_grad=True),  # torchvision's eps
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[24, 40, 112, 960]))  # strides 4, 8, 16, 32
# the parent's optimizer rules still apply: backbone at lr x backbone_lr_mult, no decay
# on norms (its Swin-specific keys simply match nothing here)
