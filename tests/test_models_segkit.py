"""segkit's own model parts: the stride-32 MobileNetV3 and the file-weighted loss."""
import json
import os

import torch

from segkit.convert.weights import convert_mobilenetv3

TV_KEYS = os.path.join(os.path.dirname(__file__), 'fixtures',
                       'torchvision_deeplabv3_mobilenet_v3_large_keys.json')


def test_mobilenetv3_os32_geometry_and_strict_load_of_converted_weights():
    from mmseg.registry import MODELS

    import segkit.models  # noqa: F401
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


def test_file_weighted_cross_entropy_equals_mmdet_with_the_list(tmp_path):
    from mmdet.models.losses import CrossEntropyLoss

    from segkit.models import FileWeightedCrossEntropyLoss
    weights = [0.5, 2.0, 1.0, 0.1]
    path = tmp_path / 'w.json'
    path.write_text(json.dumps(weights))
    torch.manual_seed(0)
    logits, target = torch.randn(16, 4), torch.randint(0, 4, (16,))
    ours = FileWeightedCrossEntropyLoss(class_weight=str(path), loss_weight=2.0)
    ref = CrossEntropyLoss(class_weight=weights, loss_weight=2.0)
    plain = CrossEntropyLoss(loss_weight=2.0)
    assert torch.allclose(ours(logits, target), ref(logits, target))
    assert not torch.allclose(ours(logits, target), plain(logits, target))
