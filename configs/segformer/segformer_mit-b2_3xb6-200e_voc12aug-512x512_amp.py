# SegFormer MiT-B2 on VOC aug: the fast GPU recipe (Ampere / Hopper GPUs). Same
# model, data, schedule, optimizer and batch as the parent; only how the arithmetic
# runs changes, so mIoU should match the parent's (check it once on your data).
#   tools/dist_train.sh configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512_amp.py 3
# Why a sibling and not the parent: bf16 needs an Ampere or newer GPU (the parent runs
# anywhere mmseg runs, CPU included, and reproduces mmseg's fp32 recipe); a run keeps
# the numerics it started with. On an older GPU use the parent with --amp fp16.
_base_ = ['./segformer_mit-b2_3xb6-200e_voc12aug-512x512.py']

# bf16 autocast: fp32's exponent range, so no loss scaling (fp16 would need it)
optim_wrapper = dict(type='SegkitAmpOptimWrapper', dtype='bfloat16', loss_scale='auto')

# segkit/engine/fast_paths.py: fused AdamW on CUDA; MiT's efficient self-attention through fused
# attention kernels (nn.MultiheadAttention with need_weights=False: mmseg's default
# call also builds the head-averaged attention map it then throws away); TF32 for
# what stays fp32. torch.compile and channels-last stay off until
# measured on the training GPU (tools/benchmark.py --compare-flags "--compile").
runner_type = 'SegkitRunner'
fast_paths = dict(fused_optimizer='auto', fast_attention=True, tf32=True,
                  channels_last=False, compile=False)  # cuDNN autotuning: the runtime's env_cfg
