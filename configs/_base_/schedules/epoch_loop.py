# The epoch loop every leaf completes: segkit's runtime, mmengine's epoch-based train
# loop, mmseg's val/test loops. The leaf writes param_scheduler, train_cfg's
# max_epochs / val_interval and the checkpoint interval from its knobs (a base
# cannot see a leaf's variables). Schedulers there step every iteration
# (convert_to_iter_based=True): the LR moves smoothly, not once per epoch.
_base_ = ['../default_runtime.py']

train_cfg = dict(type='EpochBasedTrainLoop')
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
