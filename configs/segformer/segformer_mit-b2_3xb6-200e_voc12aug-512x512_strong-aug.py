# Variant: stronger augmentation against overfitting (val mIoU flat while train loss
# keeps falling): wider scale range, rotation, stronger photometric distortion.
_base_ = ['./segformer_mit-b2_3xb6-200e_voc12aug-512x512.py']

crop_size = _base_.crop_size
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.25, 2.5),  # base: 0.5-2.0
         keep_ratio=True),
    dict(type='RandomRotate', prob=0.5, degree=15, pad_val=0, seg_pad_val=255),  # new
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=48, contrast_range=(0.4, 1.6),
         saturation_range=(0.4, 1.6), hue_delta=24),  # base: 32, 0.5-1.5, 0.5-1.5, 18
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
