# Pascal VOC 2012 + SBD ("aug", 21 classes) as epoch dataloaders. One dataset over
# the 10,582-image train_aug list (the same images as mmseg's concatenation of
# train.txt, 1,464, and aug.txt, 9,118, in one list and one mask folder);
# val = VOC2012 val, 1,449.
# tools/prepare_data.py voc-aug builds SegmentationClassAug and both lists.
_base_ = ['mmseg::_base_/datasets/pascal_voc12.py']

data_root = 'data/VOCdevkit/VOC2012'
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/train_aug.txt'))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
# mmseg's IoUMetric plus per-class values for TensorBoard / tools/test.py
val_evaluator = dict(type='PerClassIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
