# Variant: Focal loss (gamma 2) instead of cross-entropy: down-weights the easy,
# frequent pixels so hard and rare ones drive the gradient. (segkit's FocalLoss:
# mmseg 1.2.2's fails on CPU for label maps; identical on GPU.)
_base_ = ['./segformer_mit-b2_3xb6-200e_voc12aug-512x512.py']

model = dict(decode_head=dict(loss_decode=dict(
    _delete_=True, type='IgnoreSafeFocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.5,
    loss_weight=1.0)))
