"""Where each pretrained file the configs expect comes from (checkpoints/README.md)."""
from __future__ import annotations

from pathlib import Path

# file under checkpoints/ -> how to get it
SOURCES = {
    'swin_tiny_patch4_window7_224_mmseg.pth': (
        'Swin-T ImageNet-1k: download https://github.com/SwinTransformer/storage/releases/'
        'download/v1.0.0/swin_tiny_patch4_window7_224.pth or the Hugging Face model '
        'microsoft/swin-tiny-patch4-window7-224, then: python tools/convert_weights.py '
        'swin SRC checkpoints/swin_tiny_patch4_window7_224_mmseg.pth'),
    'mit_b2_mmseg.pth': (
        'MiT-B2 ImageNet-1k: download mit_b2.pth (SegFormer release, github.com/NVlabs/'
        'SegFormer) or the Hugging Face model nvidia/mit-b2, then: python '
        'tools/convert_weights.py mit SRC checkpoints/mit_b2_mmseg.pth'),
    'mit_b4_mmseg.pth': (
        'MiT-B4 ImageNet-1k: download mit_b4.pth (SegFormer release) or nvidia/mit-b4, '
        'then: python tools/convert_weights.py mit SRC checkpoints/mit_b4_mmseg.pth'),
    'mobilenet_v3_large_deeplabv3_mmseg.pth': (
        "MobileNetV3-Large from torchvision's deeplabv3_mobilenet_v3_large "
        '(deeplabv3_mobilenet_v3_large-fc3c493d.pth), then: python '
        'tools/convert_weights.py mobilenetv3 SRC '
        'checkpoints/mobilenet_v3_large_deeplabv3_mmseg.pth'),
}


def how_to_get(path: str) -> str:
    """A one-line hint for a missing pretrained file."""
    hint = SOURCES.get(Path(path).name)
    if hint:
        return hint
    return ('put the file there, or set its init_cfg checkpoint (or load_from) '
            'to an existing path; see checkpoints/README.md')
