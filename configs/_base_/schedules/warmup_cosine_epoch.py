# Linear warmup, then cosine annealing to eta_min, counted in epochs; steps every
# iteration (convert_to_iter_based=True).
_base_ = ['../default_runtime.py']

max_epochs = 100          # length of training
warmup_epochs = 5         # linear warmup from lr x 1e-6 up to lr
val_interval = 10         # validate every N epochs
checkpoint_interval = 10  # resumable checkpoint every N epochs

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    # eta_min + (lr - eta_min) x (1 + cos(pi x t / T)) / 2, T = the epochs after warmup
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(interval=checkpoint_interval))
