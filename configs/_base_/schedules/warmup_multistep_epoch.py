# Linear warmup, then the LR drops by gamma at fixed epochs (step schedule); steps
# every iteration (convert_to_iter_based=True).
_base_ = ['../default_runtime.py']

max_epochs = 100          # length of training
warmup_epochs = 5         # linear warmup from lr x 1e-6 up to lr
milestones = [75, 90]     # epochs (counted from 0) where the LR is multiplied by gamma
gamma = 0.1
val_interval = 10         # validate every N epochs
checkpoint_interval = 10  # resumable checkpoint every N epochs

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    # begin=0 so the milestones are plain epoch numbers
    dict(type='MultiStepLR', milestones=milestones, gamma=gamma, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(interval=checkpoint_interval))
