# Variant: warmup + cosine annealing instead of warmup + poly.
_base_ = ['./mask2former_swin-t_3xb4-200e_ade20k-512x512.py']

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0,
         end=_base_.warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=_base_.warmup_epochs,
         end=_base_.max_epochs, convert_to_iter_based=True),
]
