# Variant: class-weighted classification loss. Mask2Former's per-query class loss
# gets weights inversely proportional to class pixel frequency (151 entries: the
# 150 classes, then "no object", kept at 0.1). Make the weights file first:
#   python tools/class_weights.py configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512_cw-ce.py --method inverse
_base_ = ['./mask2former_swin-t_3xb4-200e_ade20k-512x512.py']

class_weight_file = 'data/class_weights/ade20k-inverse-mask2former.json'  # tools/class_weights.py

# segkit's train/test read the file into the list mmdet's loss and head expect
model = dict(decode_head=dict(loss_cls=dict(class_weight=class_weight_file)))
