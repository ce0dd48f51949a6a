# Variant: cross-entropy + Lovasz-softmax: CE for stable early training, Lovasz for
# the IoU the metric measures (a common fine-tuning recipe).
_base_ = ['./segformer_mit-b2_3xb6-200e_voc12aug-512x512.py']

model = dict(decode_head=dict(loss_decode=[
    dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, loss_name='loss_ce'),
    dict(type='LovaszLoss', loss_type='multi_class', classes='present', per_image=False,
         reduction='none', loss_weight=1.0, loss_name='loss_lovasz'),
]))
