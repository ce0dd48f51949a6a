"""Build a config's real model and feed it synthetic batches (tests, benchmarks).

The model, data preprocessor, losses and optimizer wrapper are the config's own;
only the pixels are random.
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
from segkit.engine.config import resolve_class_weight_files


def strip_pretrained(model_cfg):
    """A copy of ``model_cfg`` that loads no pretrained weights."""
    def walk(node):
        if isinstance(node, dict):
            init = node.get('init_cfg')
            if isinstance(init, dict) and init.get('type') == 'Pretrained':
                node['init_cfg'] = None
            if isinstance(node.get('pretrained'), str):
                node['pretrained'] = None
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list, tuple)):
                walk(child)
    model_cfg = copy.deepcopy(model_cfg)
    walk(model_cfg)
    return model_cfg


def import_custom_modules(cfg) -> None:
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])


def build_model(cfg, device: str = 'cpu'):
    """The config's model without pretrained weights (SyncBN reverted to BN: one
    process, maybe no GPU)."""
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import MODELS
    import_custom_modules(cfg)
    model_cfg = strip_pretrained(cfg.model)
    resolve_class_weight_files(model_cfg)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return revert_sync_batchnorm(model).to(device)


def num_classes_of(cfg) -> int:
    head = cfg.model.get('decode_head')
    return int((head[-1] if isinstance(head, (list, tuple)) else head)['num_classes'])


def crop_size_of(cfg) -> Optional[tuple]:
    crop = cfg.get('crop_size') or cfg.model.get('data_preprocessor', {}).get('size')
    return tuple(crop) if crop else None


def synthetic_batch(num_classes: int, batch_size: int, size: tuple, seed: int = 0) -> dict:
    """A batch as mmseg's dataloader yields it: uint8 images and label maps, blocky (a
    few regions per image, so Mask2Former's instance conversion sees several classes)
    with a strip of 255 (ignored)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    h, w = size
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch_size):
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        coarse = torch.randint(0, num_classes, (1, 1, max(h // 16, 1), max(w // 16, 1)),
                               generator=g).float()
        label = torch.nn.functional.interpolate(coarse, size=(h, w), mode='nearest')[0].long()
        label[:, :, :max(w // 32, 1)] = 255
        samples.append(SegDataSample(
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                          scale_factor=(1.0, 1.0), flip=False, reduce_zero_label=False),
            gt_sem_seg=PixelData(data=label)))
    return dict(inputs=inputs, data_samples=samples)


def train_step(model, cfg, data: dict) -> dict:
    """One real training step through the config's optimizer wrapper."""
    from mmengine.optim import build_optim_wrapper
    model.train()
    return model.train_step(data, build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper)))
