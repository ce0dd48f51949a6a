"""mmseg's own Mask2Former-Swin-T and SegFormer-B2 build on CPU (no pretrained
weights) and take one real training step on a small input."""
import math

import pytest

from segkit.engine.config import load_config
from segkit.bench.synthetic import build_model, num_classes_of, synthetic_batch, train_step

STOCK = [
    'mmseg::segformer/segformer_mit-b2_8xb2-160k_ade20k-512x512.py',
    'mmseg::mask2former/mask2former_swin-t_8xb2-160k_ade20k-512x512.py',
]


@pytest.mark.parametrize('config', STOCK, ids=['segformer-b2', 'mask2former-swin-t'])
def test_stock_model_one_training_step(config):
    cfg = load_config(config)
    cfg.model.data_preprocessor.size = (64, 64)  # small input, real model
    model = build_model(cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = train_step(model, cfg, synthetic_batch(num_classes_of(cfg), 2, (64, 64)))
    assert 'loss' in losses and math.isfinite(float(losses['loss']))
    changed = sum(not p.detach().equal(before[n]) for n, p in model.named_parameters())
    assert changed > 0.5 * len(before)  # the optimizer really stepped
