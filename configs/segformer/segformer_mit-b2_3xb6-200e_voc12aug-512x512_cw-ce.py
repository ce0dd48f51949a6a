# Variant: class-weighted cross-entropy. Rare classes (chair, bottle, plant on VOC)
# get weights inversely proportional to their pixel frequency, so the loss stops
# being dominated by background. Make the weights file first:
#   python tools/class_weights.py configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512_cw-ce.py --method inverse
_base_ = ['./segformer_mit-b2_3xb6-200e_voc12aug-512x512.py']

class_weight_file = 'data/class_weights/voc12aug-inverse.json'  # tools/class_weights.py

# segkit's CE: mmseg 1.2.2's crashes on class weights + ignored (255) pixels
model = dict(decode_head=dict(loss_decode=dict(
    type='ClassWeightedCrossEntropyLoss', class_weight=class_weight_file)))
