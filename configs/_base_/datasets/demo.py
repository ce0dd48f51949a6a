# segkit's built-in demo dataset (tools/make_demo_data.py writes it; `make demo` does
# it for you): 64x64 shapes on textured backgrounds, 480 train / 120 val images,
# 5 classes, "ring" rare (~1.3 % of pixels). Epoch dataloaders, DefaultSampler.
dataset_type = 'BaseSegDataset'
data_root = 'data/demo'
metainfo = dict(
    classes=('background', 'disk', 'square', 'triangle', 'ring'),
    palette=[[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200], [255, 225, 25]])
crop_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    # the generator already varies shape scale 3x; zooming on top only slows learning
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
_dataset = dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                img_suffix='.jpg', seg_map_suffix='.png')
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(_dataset, data_prefix=dict(img_path='img_dir/train',
                                            seg_map_path='ann_dir/train'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_dataset, data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='PerClassIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
