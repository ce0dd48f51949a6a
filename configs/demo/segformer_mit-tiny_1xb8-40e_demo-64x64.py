# The demo: a tiny SegFormer (MiT with small widths, no pretrained weights) on the
# built-in shapes dataset, on CPU in a few minutes. Same runtime and schedule bases
# as the real configs: TensorBoard, best-mIoU checkpoint, warmup + poly by epoch.
#   make demo        (or: python tools/train.py configs/demo/THIS.py)
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',   # SegFormer model (narrowed below)
    '../_base_/datasets/demo.py',                 # built-in shapes dataset
    '../_base_/schedules/epoch_loop.py',         # epoch loop + runtime (schedule below)
]

# ---- knobs ---------------------------------------------------------------------------
num_gpus = 1                # one process (CPU or one GPU)
samples_per_gpu = 8
max_epochs = 40             # 1 ep = ceil(480 / 8) = 60 it; 40 ep = 2,400 it
warmup_epochs = 1           # 60 it of linear warmup
val_interval = 1            # validate every epoch (the demo wants the curve)
checkpoint_interval = 1
lr = 6e-3                   # AdamW; from scratch, tiny model: 100x SegFormer's 6e-5
num_classes = 5
crop_size = (64, 64)
# --------------------------------------------------------------------------------------

norm_cfg = dict(type='BN', requires_grad=True)  # one process: plain BN
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(embed_dims=16, num_heads=[1, 2, 5, 8], num_layers=[2, 2, 2, 2],
                  drop_path_rate=0.0),  # stages: 16, 32, 80, 128 channels
    decode_head=dict(in_channels=[16, 32, 80, 128], channels=64, num_classes=num_classes,
                     norm_cfg=norm_cfg, dropout_ratio=0.0))  # no dropout: it underfits
train_dataloader = dict(batch_size=samples_per_gpu)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'pos_block': dict(decay_mult=0.0),
                                    'norm': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=val_interval)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=checkpoint_interval, max_keep_ckpts=2))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)  # the demo's numbers are reproducible
