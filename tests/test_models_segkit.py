"""segkit's own model parts: the stride-32 MobileNetV3 and the file-weighted loss."""
import json
import os

import pytest
import torch

from conftest import ROOT

from segkit.convert.weights import convert_mobilenetv3

TV_KEYS = os.path.join(os.path.dirname(__file__), 'fixtures',
                       'torchvision_deeplabv3_mobilenet_v3_large_keys.json')


def test_mobilenetv3_os32_geometry_and_strict_load_of_converted_weights():
    from mmseg.registry import MODELS

    import segkit.plugins.models  # noqa: F401
    backbone = MODELS.build(dict(type='MobileNetV3OS32', arch='large',
                                 out_indices=(3, 6, 12, 16),
                                 norm_cfg=dict(type='BN', eps=0.001)))
    backbone.eval()  # (mmseg's MobileNetV3.train() returns None, so no chaining)
    feats = backbone(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(24, 16, 16), (40, 8, 8), (112, 4, 4),
                                                   (960, 2, 2)]
    with open(TV_KEYS) as f:
        keys = json.load(f)['keys']
    g = torch.Generator().manual_seed(0)
    torchvision_sd = {k: (torch.randint(0, 9, shape, generator=g) if k.endswith(
        'num_batches_tracked') else torch.randn(shape, generator=g)) for k, shape in keys}
    converted = convert_mobilenetv3(torchvision_sd)
    result = backbone.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert len(converted) == len(backbone.state_dict())


def test_class_weighted_ce_survives_ignored_pixels_and_is_torchs_weighted_mean():
    from mmseg.models.losses import CrossEntropyLoss

    from segkit.plugins.models import ClassWeightedCrossEntropyLoss
    weights = [0.5, 2.0, 1.0, 0.1]
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 8, 8)
    label = torch.randint(0, 4, (2, 8, 8))
    label[:, 0] = 255  # VOC's object boundaries
    ours = ClassWeightedCrossEntropyLoss(class_weight=weights, loss_weight=1.0)
    expected = torch.nn.functional.cross_entropy(logits, label, weight=torch.tensor(weights),
                                                 ignore_index=255)
    assert torch.allclose(ours(logits, label, ignore_index=255), expected, atol=1e-6)
    stock = CrossEntropyLoss(class_weight=weights)
    with pytest.raises(IndexError):  # the mmseg 1.2.2 bug this works around
        stock(logits, label, ignore_index=255)


def test_ignore_safe_focal_loss_on_cpu_masks_ignored_pixels():
    from mmseg.models.losses import FocalLoss
    from mmseg.models.losses.focal_loss import py_sigmoid_focal_loss

    from segkit.plugins.models import IgnoreSafeFocalLoss
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4)
    label = torch.randint(0, 3, (2, 4, 4))
    label[0, 0] = 255
    ours = IgnoreSafeFocalLoss(use_sigmoid=True, gamma=2.0, alpha=0.5)(logits, label)
    flat = logits.permute(0, 2, 3, 1).reshape(-1, 3)
    target = label.reshape(-1)
    valid = (target != 255).float().view(-1, 1)
    onehot = torch.nn.functional.one_hot(target.clamp(max=2), 3).float()
    expected = py_sigmoid_focal_loss(flat, onehot, valid_mask=valid, gamma=2.0, alpha=0.5)
    assert torch.allclose(ours, expected, atol=1e-6) and ours > 0
    with pytest.raises(RuntimeError):  # mmseg 1.2.2's CPU path
        FocalLoss(use_sigmoid=True)(logits, label)


def test_class_weight_files_are_resolved_for_mask2former(tmp_path):
    from segkit.engine.config import load_config, resolve_class_weight_files
    from segkit.errors import SegkitError
    cfg = load_config(str(ROOT / 'configs/mask2former/'
                          'mask2former_swin-t_3xb4-200e_ade20k-512x512_cw-ce.py'))
    path = tmp_path / 'w.json'
    path.write_text(json.dumps([2.0] * 150 + [0.1]))
    cfg.model.decode_head.loss_cls.class_weight = str(path)
    resolve_class_weight_files(cfg.model)
    assert cfg.model.decode_head.loss_cls.class_weight == [2.0] * 150 + [0.1]
    cfg.model.decode_head.loss_cls.class_weight = str(tmp_path / 'missing.json')
    with pytest.raises(SegkitError, match='tools/class_weights.py'):
        resolve_class_weight_files(cfg.model)
