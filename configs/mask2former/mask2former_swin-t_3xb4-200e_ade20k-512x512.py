# Mask2Former, Swin-T backbone, ADE20K (150 classes), 512x512 crops, counted in
# epochs: 3 GPUs x 4 images, 200 epochs. Model and optimizer are mmseg's
# mask2former_swin-t_8xb2-160k_ade20k-512x512 (47.7 mIoU published at 160k it x 16).
#   tools/dist_train.sh configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512.py 3
_base_ = [
    '../_base_/models/mask2former_swin-t.py',     # the model alone
    '../_base_/datasets/ade20k_epoch.py',         # ADE20K, DefaultSampler
    '../_base_/schedules/epoch_loop.py',         # epoch loop + runtime (schedule below)
]

# ---- knobs: edit these; everything below follows from them -------------------------
num_gpus = 3                # GPUs you launch with; checked against the actual launch
samples_per_gpu = 4         # images per GPU per iteration (mmseg: 2) -> total batch 12
# 1 ep = ceil(ceil(20210 / 3 GPUs) / 4) = 1685 it; 200 ep = 337,000 it x 12 = 4.04 M
# samples (mmseg: 160k it x 16 = 2.56 M samples = 127 ep)
max_epochs = 200
warmup_epochs = 20          # linear warmup, 20 ep = 33,700 it (mmseg: none)
val_interval = 10           # validate (2,000 images) every 10 epochs
checkpoint_interval = 10    # resumable checkpoint every 10 epochs; best mIoU kept too
lr = 1e-4                   # AdamW, mmseg's for total batch 16 (--auto-scale-lr: x 12/16)
weight_decay = 0.05
backbone_lr_mult = 0.1      # Swin-T learns 10x slower than the head (encoder/decoder split)
grad_clip = 0.01            # max gradient norm (mmseg's value for Mask2Former)
num_classes = 150
crop_size = (512, 512)
pretrained = 'checkpoints/swin_tiny_patch4_window7_224_mmseg.pth'  # checkpoints/README.md
# Classic knobs: no weight decay on biases -> paramwise_cfg bias_decay_mult=0.0 (mmseg
# decays them); a smaller, faster backbone -> mask2former_mobilenetv3-l_*.
# -------------------------------------------------------------------------------------

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(
        num_classes=num_classes,
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])))  # + "no object"

# mmseg's Mask2Former pipeline: random short side 256-1024, then crop
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomChoiceResize', scales=[int(crop_size[0] * x * 0.1) for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=4 * crop_size[0]),
    # segkit's output-identical, faster RandomCrop / PhotoMetricDistortion (benchmark_data.py)
    dict(type='FastRandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='FastPhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=samples_per_gpu, dataset=dict(pipeline=train_pipeline))

# Swin-T at lr x backbone_lr_mult; no weight decay on norms, position tables and
# query/level embeddings (mmseg's rules; the most specific key wins)
backbone_norm_multi = dict(lr_mult=backbone_lr_mult, decay_mult=0.0)
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
custom_keys = {
    'backbone': dict(lr_mult=backbone_lr_mult, decay_mult=1.0),
    'backbone.patch_embed.norm': backbone_norm_multi,
    'backbone.norm': backbone_norm_multi,
    'absolute_pos_embed': backbone_norm_multi,
    'relative_position_bias_table': backbone_norm_multi,
    'query_embed': embed_multi,
    'query_feat': embed_multi,
    'level_embed': embed_multi,
}
custom_keys.update({
    f'backbone.stages.{stage}.blocks.{block}.norm': backbone_norm_multi
    for stage, num_blocks in enumerate(_base_.depths) for block in range(num_blocks)})
custom_keys.update({
    f'backbone.stages.{stage}.downsample.norm': backbone_norm_multi
    for stage in range(len(_base_.depths) - 1)})
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=weight_decay, eps=1e-8,
                   betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=grad_clip, norm_type=2),
    paramwise_cfg=dict(custom_keys=custom_keys, norm_decay_mult=0.0))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='PolyLR', eta_min=0.0, power=0.9, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),  # mmseg: power 0.9 over 160k it
]
train_cfg = dict(max_epochs=max_epochs, val_interval=val_interval)
default_hooks = dict(checkpoint=dict(interval=checkpoint_interval))
auto_scale_lr = dict(enable=False, base_batch_size=16)  # lr above is for 8 GPUs x 2
