# Linear warmup, then poly decay (the default schedule), counted in epochs. Each
# scheduler steps every iteration (convert_to_iter_based=True): the LR moves
# smoothly, not once per epoch. Leaves set the knobs and re-derive the lists below.
_base_ = ['../default_runtime.py']

max_epochs = 100          # length of training
warmup_epochs = 5         # linear warmup from lr x 1e-6 up to lr
val_interval = 10         # validate every N epochs
checkpoint_interval = 10  # resumable checkpoint every N epochs (save_best: every validation)

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    # (lr - eta_min) x (1 - t / T) ** power + eta_min over the epochs after warmup
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(interval=checkpoint_interval))
