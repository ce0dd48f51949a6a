# Variant: Focal loss (gamma 2) instead of cross-entropy: down-weights the easy,
# frequent pixels so hard and rare ones drive the gradient.
_base_ = ['./segformer_mit-b2_3xb6-200e_voc12aug-512x512.py']

model = dict(decode_head=dict(loss_decode=dict(
    _delete_=True, type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.5,
    loss_weight=1.0)))
