"""One source for the facts several parts of segkit state: the pinned stack, dataset
split sizes, and the pretrained files the configs expect. Imports nothing, so
``scripts/install.sh`` runs it before anything is installed: ``python segkit/facts.py``
prints the stack as shell assignments."""
from __future__ import annotations

from pathlib import Path

# ---- the stack segkit pins and tests (requirements.txt pins the pip-installed rest;
# scripts/install.sh, doctor and tests/test_stack.py read these)
PYTHON_MIN, PYTHON_MAX = (3, 10), (3, 12)  # inclusive
TORCH_MIN, TORCH_MAX = '2.6', '2.14'  # [min, max): safe loading needs >= 2.6
TORCH_DEFAULT = '2.13.0'  # installed when the env has no torch in the window
MMCV_VERSION = '2.1.0'  # built from source with its ops
SETUPTOOLS = '>=77.0.3,<81'  # torch 2.13 needs >= 77.0.3; mmcv/mmengine need pkg_resources

# ---- dataset split sizes
ADE_COUNTS = {'training': 20210, 'validation': 2000}
VOC_COUNTS = {'train': 1464, 'val': 1449}
SBD_COUNTS = {'train': 8498, 'val': 2857}
TRAIN_AUG_COUNT = 10582  # VOC train + SBD train/val, minus VOC val
# Train-split sizes of the model zoo's datasets, for when the files are not here:
# (dataset type, end of img_path or ann_file, images, what).
SPLIT_SIZES = [
    # published split sizes
    ('ADE20KDataset', 'images/training', ADE_COUNTS['training'], 'ADE20K train'),
    ('CityscapesDataset', 'leftImg8bit/train', 2975, 'Cityscapes gtFine train'),
    ('PascalVOCDataset', 'ImageSets/Segmentation/train.txt', VOC_COUNTS['train'], 'VOC2012 train'),
    ('PascalVOCDataset', 'ImageSets/Segmentation/train_aug.txt', TRAIN_AUG_COUNT, 'VOC train_aug'),
    ('PascalContextDataset', 'SegmentationContext/train.txt', 4996, 'Pascal Context train'),
    ('PascalContextDataset59', 'SegmentationContext/train.txt', 4996, 'Pascal Context train'),
    ('COCOStuffDataset', 'images/train2017', 118287, 'COCO-Stuff 164k train2017'),
    ('COCOStuffDataset', 'images/train2014', 9000, 'COCO-Stuff 10k train'),
    ('LoveDADataset', 'img_dir/train', 2522, 'LoveDA train'),
    ('DRIVEDataset', 'images/training', 20, 'DRIVE train'),
    ('BDD100KDataset', 'images/10k/train', 7000, 'BDD100K 10k train'),
    ('MapillaryDataset_v1', 'training/images', 18000, 'Mapillary Vistas train'),
    ('MapillaryDataset_v2', 'training/images', 18000, 'Mapillary Vistas train'),
    # what mmseg's converters write (AUG_LEN, *_LEN / TRAINING_LEN) or its docs state
    ('PascalVOCDataset', 'ImageSets/Segmentation/aug.txt', 9118, 'VOC aug.txt'),  # 10582-1464
    ('PascalVOCDataset', 'ImageSets/Segmentation/trainaug.txt', TRAIN_AUG_COUNT, 'VOC trainaug'),
    ('ChaseDB1Dataset', 'images/training', 20, 'CHASE_DB1 train'),
    ('HRFDataset', 'images/training', 15, 'HRF train'),
    ('STAREDataset', 'images/training', 10, 'STARE train'),
    ('PotsdamDataset', 'img_dir/train', 3456, 'Potsdam train'),
    ('ISPRSDataset', 'img_dir/train', 344, 'Vaihingen train'),
    ('iSAIDDataset', 'img_dir/train', 33978, 'iSAID train'),
    ('REFUGEDataset', 'images/training', 400, 'REFUGE train'),
]

# ---- pretrained files the configs expect under checkpoints/ (checkpoints/README.md)
CHECKPOINT_DIR = Path('checkpoints')  # cwd-relative, like the configs
PRETRAINED = {  # converter kind (tools/convert_weights.py) -> file name
    'swin': 'swin_tiny_patch4_window7_224_mmseg.pth',
    'mobilenetv3': 'mobilenet_v3_large_deeplabv3_mmseg.pth',
    'mit-b2': 'mit_b2_mmseg.pth',
    'mit-b4': 'mit_b4_mmseg.pth',
}
# file -> how to get it
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
    return SOURCES.get(Path(path).name) or (
        'put the file there, or set its init_cfg checkpoint (or load_from) to an existing '
        'path; see checkpoints/README.md')


if __name__ == '__main__':  # for scripts/install.sh
    print(f'TORCH_MIN={TORCH_MIN} TORCH_MAX={TORCH_MAX} TORCH_DEFAULT={TORCH_DEFAULT} '
          f'MMCV_VERSION={MMCV_VERSION} PYTHON_MIN={"%d.%d" % PYTHON_MIN} '
          f'PYTHON_MAX={"%d.%d" % PYTHON_MAX} SETUPTOOLS="{SETUPTOOLS}"')
