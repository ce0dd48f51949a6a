# Variant: deep supervision. An auxiliary FCN head on the stage-3 features (stride
# 16) adds a loss (weight 0.4) that feeds gradient straight into the middle of the
# encoder; dropped at inference.
_base_ = ['./segformer_mit-b2_3xb6-200e_voc12aug-512x512.py']

model = dict(auxiliary_head=dict(
    type='FCNHead', in_channels=320, in_index=2, channels=256, num_convs=1,
    concat_input=False, dropout_ratio=0.1, num_classes=_base_.num_classes,
    norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
    loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)))
