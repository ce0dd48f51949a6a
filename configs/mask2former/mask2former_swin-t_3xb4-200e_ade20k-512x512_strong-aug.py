# Variant: stronger augmentation against overfitting (val mIoU flat while train loss
# keeps falling): wider short-side range, rotation, stronger photometric distortion.
_base_ = ['./mask2former_swin-t_3xb4-200e_ade20k-512x512.py']

crop_size = _base_.crop_size
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomChoiceResize',  # base: short side 0.5-2.0 x crop
         scales=[int(crop_size[0] * x * 0.1) for x in range(3, 26)],
         resize_type='ResizeShortestEdge', max_size=5 * crop_size[0]),
    dict(type='RandomRotate', prob=0.5, degree=15, pad_val=0, seg_pad_val=255),  # new
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=48, contrast_range=(0.4, 1.6),
         saturation_range=(0.4, 1.6), hue_delta=24),  # base: 32, 0.5-1.5, 0.5-1.5, 18
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
