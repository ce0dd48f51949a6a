# Runtime for epoch-based runs (mmseg's runtime + what it lacks): TensorBoard beside
# the local logs, logs and checkpoints counted in epochs, the best-mIoU checkpoint
# kept, and segkit's hooks and modules registered (segkit.plugins: everything a config
# names by type=, Mask2Former's mmdet parts included).
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['segkit.plugins'], allow_failed_imports=False)

env_cfg = dict(
    cudnn_benchmark=True,  # fixed crop sizes: let cuDNN pick the fastest kernels
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # NCCL on GPUs (segkit switches to gloo where CUDA is missing). timeout: seconds a
    # rank waits on the others before giving up (torch's default: 30 min)
    dist_cfg=dict(backend='nccl', timeout=600),
)
# text/JSON logs in <timestamp>/vis_data; TensorBoard is TensorboardHook's (below): one
# run per work dir in <work_dir>/tensorboard, stepped by iteration, resumed in place
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=True)  # mmseg: by_epoch=False (iteration runs)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # keep the newest 3 epoch checkpoints and the best mIoU one; segkit's hook saves
    # atomically (a kill mid-save never leaves a truncated checkpoint) and keeps the
    # optimizer in the best one (resumable)
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=3,
                    save_best='mIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
custom_hooks = [
    dict(type='PerClassMetricsHook'),  # per-class IoU / Acc -> TensorBoard, JSON log
    # train/ val/ val_IoU/ perf/ tags, a layout, num_images val predictions (0: off)
    dict(type='TensorboardHook', num_images=4),
    dict(type='NonFiniteLossHook'),  # stop at a NaN/Inf loss, before saving it
    dict(type='ScheduleFollowsConfigHook'),  # resume with a longer schedule: follow it
]
