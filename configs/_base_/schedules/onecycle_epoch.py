# One-cycle (Smith): the LR rises from max_lr / div_factor to max_lr over the first
# pct_start of training, then anneals (cosine) to max_lr / (div_factor x
# final_div_factor); momentum (AdamW's beta1, SGD's momentum) moves the opposite way,
# max_momentum -> base_momentum -> max_momentum. Steps every iteration.
# Set the optimizer's momentum / betas[0] to max_momentum in the leaf.
_base_ = ['../default_runtime.py']

max_epochs = 100          # length of training
max_lr = 1e-3             # peak LR (one-cycle usually peaks 5-10x a warmup+poly LR)
pct_start = 0.3           # fraction of training spent rising
max_momentum = 0.95       # momentum at the start and the end
base_momentum = 0.85      # momentum at the LR peak
val_interval = 10         # validate every N epochs
checkpoint_interval = 10  # resumable checkpoint every N epochs

param_scheduler = [
    dict(type='OneCycleLR', eta_max=max_lr, pct_start=pct_start, anneal_strategy='cos',
         div_factor=25.0, final_div_factor=1e4, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
    # momentum: cosine max -> base while the LR rises, then back (torch's OneCycleLR)
    dict(type='CosineAnnealingMomentum', eta_min=base_momentum, by_epoch=True, begin=0,
         end=pct_start * max_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingMomentum', eta_min=max_momentum, by_epoch=True,
         begin=pct_start * max_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(interval=checkpoint_interval))
