# Variant: warmup + cosine annealing instead of warmup + poly: spends more of the
# run near the peak LR and decays faster at the end.
_base_ = ['./segformer_mit-b2_3xb6-200e_voc12aug-512x512.py']

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0,
         end=_base_.warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=_base_.warmup_epochs,
         end=_base_.max_epochs, convert_to_iter_based=True),
]
