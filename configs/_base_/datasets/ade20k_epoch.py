# ADE20K (150 classes) as epoch dataloaders: mmseg's ade20k.py with a DefaultSampler
# (mmseg's InfiniteSampler never ends an epoch) and segkit's data root.
# Train = 20,210 images, val = 2,000 (tools/prepare_data.py ade20k checks both).
_base_ = ['mmseg::_base_/datasets/ade20k.py']

data_root = 'data/ADEChallengeData2016'  # mmseg: data/ade/ADEChallengeData2016
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
# mmseg's IoUMetric plus per-class values for TensorBoard / tools/test.py
val_evaluator = dict(type='PerClassIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
