# The Mask2Former demo: the real Mask2Former head (mmdet's MSDeformAttn pixel
# decoder, masked-attention transformer decoder, Hungarian matching) with small
# widths and few queries, on a tiny MiT encoder, on the built-in shapes dataset.
# On CPU mmcv's deformable attention takes its PyTorch path.
#   make demo MODEL=mask2former
_base_ = [
    '../_base_/models/mask2former_swin-t.py',     # the real Mask2Former model (shrunk below)
    '../_base_/datasets/demo.py',                 # built-in shapes dataset
    '../_base_/schedules/epoch_loop.py',         # epoch loop + runtime (schedule below)
]

# ---- knobs ---------------------------------------------------------------------------
num_gpus = 1
samples_per_gpu = 8
max_epochs = 20             # 1 ep = ceil(480 / 8) = 60 it; 20 ep = 1,200 it
warmup_epochs = 1
val_interval = 1
checkpoint_interval = 1
lr = 2e-3                   # AdamW, from scratch (Mask2Former's 1e-4 is for a pretrained encoder)
num_classes = 5
num_queries = 16            # Mask2Former: 100
width = 64                  # pixel-decoder / transformer width (Mask2Former: 256)
crop_size = (64, 64)
# --------------------------------------------------------------------------------------

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True, type='MixVisionTransformer', in_channels=3, embed_dims=16,
        num_stages=4, num_layers=[2, 2, 2, 2], num_heads=[1, 2, 5, 8],
        patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1], out_indices=(0, 1, 2, 3),
        mlp_ratio=4, qkv_bias=True, drop_path_rate=0.0),
    decode_head=dict(
        in_channels=[16, 32, 80, 128],
        feat_channels=width,
        out_channels=width,
        num_classes=num_classes,
        num_queries=num_queries,
        pixel_decoder=dict(
            encoder=dict(num_layers=2, layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=width, num_heads=4),
                ffn_cfg=dict(embed_dims=width, feedforward_channels=2 * width))),
            positional_encoding=dict(num_feats=width // 2)),
        positional_encoding=dict(num_feats=width // 2),
        transformer_decoder=dict(num_layers=3, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=width, num_heads=4),
            cross_attn_cfg=dict(embed_dims=width, num_heads=4),
            ffn_cfg=dict(embed_dims=width, feedforward_channels=4 * width))),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1]),
        train_cfg=dict(num_points=1024)))  # points sampled per mask for the loss (12544)
train_dataloader = dict(batch_size=samples_per_gpu)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={
        'query_embed': dict(decay_mult=0.0), 'query_feat': dict(decay_mult=0.0),
        'level_embed': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='PolyLR', eta_min=0.0, power=0.9, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=val_interval)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=checkpoint_interval, max_keep_ckpts=2))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)  # the demo's numbers are reproducible
