# Variant: Lovasz-softmax loss instead of cross-entropy: optimises a surrogate of
# per-class IoU directly, which helps small and rare classes.
_base_ = ['./segformer_mit-b2_3xb6-200e_voc12aug-512x512.py']

model = dict(decode_head=dict(loss_decode=dict(
    _delete_=True, type='LovaszLoss', loss_type='multi_class', classes='present',
    per_image=False, reduction='none', loss_weight=1.0)))
