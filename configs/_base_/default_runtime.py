# Runtime for epoch-based runs (mmseg's runtime + what it lacks): TensorBoard beside
# the local logs, logs and checkpoints counted in epochs, the best-mIoU checkpoint
# kept, and segkit's hooks and modules registered.
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['segkit.hooks', 'segkit.models'], allow_failed_imports=False)

env_cfg = dict(
    cudnn_benchmark=True,  # fixed crop sizes: let cuDNN pick the fastest kernels
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # NCCL on GPUs; segkit's launcher switches to gloo where CUDA is missing
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=True)  # mmseg: by_epoch=False (iteration runs)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # keep the newest 3 epoch checkpoints and the best mIoU one
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=3,
                    save_best='mIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
# per-class IoU / accuracy of every validation -> TensorBoard and the JSON log
custom_hooks = [dict(type='PerClassMetricsHook')]
