# Mask2Former Swin-T on ADE20K: the fast GPU recipe (Ampere / Hopper GPUs). Same
# model, data, schedule, optimizer and batch as the parent; only how the arithmetic
# runs changes, so mIoU should match the parent's (check it once on your data).
#   tools/dist_train.sh configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512_amp.py 3
# Why a sibling and not the parent: bf16 needs an Ampere or newer GPU (the parent runs
# anywhere mmseg runs, CPU included, and reproduces mmseg's fp32 recipe); a run keeps
# the numerics it started with. On an older GPU use the parent with --amp fp16.
_base_ = ['./mask2former_swin-t_3xb4-200e_ade20k-512x512.py']

# bf16 autocast. The official Mask2Former trains with fp16 AMP (detectron2
# SOLVER.AMP); bf16 has fp32's exponent range, so no loss scaling and no overflow-
# skipped steps. Fragile parts stay fp32 (segkit/plugins/models/amp_safe.py): mmcv's
# deformable-attention sampling (its CUDA kernel has no bf16) and the Hungarian
# matching + mask losses (a 12,544-point BCE sum passes fp16's 65,504).
optim_wrapper = dict(type='SegkitAmpOptimWrapper', dtype='bfloat16', loss_scale='auto')

# segkit/engine/fast_paths.py: fused AdamW on CUDA, fused attention kernels for the masked
# attention of the transformer decoder (need_weights=False, same maths), TF32 for
# what stays fp32. torch.compile stays off: the Mask2Former head
# cannot be compiled whole (scipy matching, mmcv's CUDA op) and compiling the
# backbone costs minutes at start-up; measure it with tools/benchmark.py --compile.
runner_type = 'SegkitRunner'
fast_paths = dict(fused_optimizer='auto', fast_attention=True, tf32=True,
                  channels_last=False, compile=False)  # cuDNN autotuning: the runtime's env_cfg
