# Variant: a larger encoder, MiT-B4 (64 M parameters vs B2's 27 M; +~3 mIoU on
# ADE20K in the SegFormer paper) with the same recipe. Needs ~1.8x the GPU memory;
# lower samples_per_gpu (and lr) if it does not fit.
_base_ = ['./segformer_mit-b2_3xb6-200e_voc12aug-512x512.py']

pretrained = 'checkpoints/mit_b4_mmseg.pth'  # checkpoints/README.md
model = dict(backbone=dict(num_layers=[3, 8, 27, 3],  # B2: [3, 4, 6, 3]
                           init_cfg=dict(checkpoint=pretrained)))
