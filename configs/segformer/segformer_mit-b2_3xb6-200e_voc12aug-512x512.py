# SegFormer, MiT-B2 encoder, Pascal VOC 2012 + SBD ("aug", 21 classes), 512x512
# crops, counted in epochs: 3 GPUs x 6 images, 200 epochs. Model and optimizer
# follow mmseg's segformer_mit-b2_8xb2-160k_ade20k-512x512.
#   tools/dist_train.sh configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512.py 3
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',   # SegFormer model (widened to B2 below)
    '../_base_/datasets/voc12aug_epoch.py',       # VOC aug, DefaultSampler
    '../_base_/schedules/epoch_loop.py',         # epoch loop + runtime (schedule below)
]

# ---- knobs: edit these; everything below follows from them -------------------------
num_gpus = 3                # GPUs you launch with; checked against the actual launch
samples_per_gpu = 6         # images per GPU per iteration -> total batch 18
# 1 ep = ceil(ceil(10582 / 3 GPUs) / 6) = 588 it; 200 ep = 117,600 it x 18 = 2.12 M
# samples (mmseg's ADE20K recipe: 160k it x 16 = 2.56 M samples)
max_epochs = 200
warmup_epochs = 15          # linear warmup, 15 ep = 8,820 it (mmseg: 1,500 it)
val_interval = 10           # validate (1,449 images) every 10 epochs
checkpoint_interval = 10    # resumable checkpoint every 10 epochs; best mIoU kept too
# AdamW LR. 6e-5 is mmseg's for a total batch of 16; the linear scaling rule gives
# 6e-5 x (3 x 6) / 16 = 6.75e-5 for this launch (--auto-scale-lr applies it).
lr = 6e-5
weight_decay = 0.01
head_lr_mult = 10.0         # decoder learns 10x faster than the pretrained encoder
num_classes = 21
crop_size = (512, 512)
pretrained = 'checkpoints/mit_b2_mmseg.pth'  # checkpoints/README.md
# Classic knobs, off as in mmseg's recipe: gradient clipping -> optim_wrapper.clip_grad
# = dict(max_norm=1.0); no weight decay on biases -> paramwise_cfg bias_decay_mult=0.0;
# deep supervision -> the *_aux-head variant; larger encoder -> segformer_mit-b4_*.
# -------------------------------------------------------------------------------------

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        embed_dims=64, num_heads=[1, 2, 5, 8], num_layers=[3, 4, 6, 3],  # MiT-B2
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[64, 128, 320, 512], num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    # segkit's output-identical, faster RandomCrop / PhotoMetricDistortion (benchmark_data.py)
    dict(type='FastRandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='FastPhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=samples_per_gpu, dataset=dict(pipeline=train_pipeline))

# no weight decay on norms and positional blocks; head at lr x head_lr_mult
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay),
    paramwise_cfg=dict(custom_keys={
        'pos_block': dict(decay_mult=0.0),
        'norm': dict(decay_mult=0.0),
        'head': dict(lr_mult=head_lr_mult)}))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=val_interval)
default_hooks = dict(checkpoint=dict(interval=checkpoint_interval))
auto_scale_lr = dict(enable=False, base_batch_size=16)  # lr above is for a batch of 16
