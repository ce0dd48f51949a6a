"""Fast paths (segkit/engine/fast_paths.py), Mask2Former's AMP safety (segkit/plugins/models/amp_safe.py)
and the output-identical fast transforms (segkit/plugins/transforms.py), on CPU.

fp32 vs bf16 loss tolerances (same weights, same batch, same RNG; relative
difference of the total loss at random init): SegFormer 2e-3, Mask2Former 5e-3
(measured on this repo's CPU: SegFormer demo 8e-5, B2 2e-5; Mask2Former demo 6e-4,
Swin-T 3e-4). bf16 keeps 8 mantissa bits (~0.4 %
per rounding); the totals average many roundings, and Mask2Former's loss itself runs
in fp32 (amp_safe). Each loss term is also checked, at 5e-2 (the per-layer
classification terms of an untrained Mask2Former move most: ~2e-2).
"""
import copy
import math

import numpy as np
import pytest
import torch

from conftest import ROOT
from segkit.engine.config import load_config
from segkit.errors import SegkitError
from segkit.engine.fast_paths import cpu_has_bf16

DEMO_SEG = str(ROOT / 'configs/demo/segformer_mit-tiny_1xb8-40e_demo-64x64.py')
DEMO_M2F = str(ROOT / 'configs/demo/mask2former_mit-tiny_1xb8-20e_demo-64x64.py')
AMP_CONFIGS = [ROOT / 'configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512_amp.py',
               ROOT / 'configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512_amp.py']
needs_bf16 = pytest.mark.skipif(not cpu_has_bf16(),
                                reason='this CPU has no native bf16 (AVX512-BF16/AMX): '
                                'bf16 autocast would be emulated and very slow')


def _model(config, size=(64, 64)):
    from segkit.bench.train_bench import quiet_mmengine
    from segkit.bench.synthetic import build_model
    quiet_mmengine()
    cfg = load_config(config)
    cfg.model.data_preprocessor.size = size
    torch.manual_seed(0)
    return cfg, build_model(cfg)


def _batch(cfg, n=2, size=(64, 64)):
    from segkit.bench.synthetic import num_classes_of, synthetic_batch
    return synthetic_batch(num_classes_of(cfg), n, size)


def _losses(model, batch, amp: bool):
    """Total loss and terms of one forward in train mode, RNG fixed."""
    torch.manual_seed(1)
    data = model.data_preprocessor(copy.copy(batch), True)
    ctx = torch.autocast('cpu', dtype=torch.bfloat16) if amp else \
        torch.autocast('cpu', enabled=False)
    with torch.no_grad(), ctx:
        losses = model(**data, mode='loss')
    total, log_vars = model.parse_losses(losses)
    return float(total), {k: float(v) for k, v in log_vars.items() if 'loss' in k}


# ------------------------------------------------------------------ AMP wrapper


def _toy_wrapper(**kwargs):
    from segkit.plugins.optim import SegkitAmpOptimWrapper
    p = torch.nn.Parameter(torch.ones(4))
    opt = torch.optim.SGD([p], lr=0.1)
    return p, SegkitAmpOptimWrapper(optimizer=opt, device_type='cpu', **kwargs)


def test_amp_wrapper_is_registered_and_refuses_cpu_fp16():
    from mmengine.registry import OPTIM_WRAPPERS
    from segkit.plugins.optim import SegkitAmpOptimWrapper
    assert OPTIM_WRAPPERS.get('SegkitAmpOptimWrapper') is SegkitAmpOptimWrapper
    with pytest.raises(SegkitError, match='fp16 autocast on CPU'):
        _toy_wrapper(dtype='float16')


def test_amp_wrapper_bf16_no_scaler_autocasts_on_cpu():
    p, ow = _toy_wrapper(dtype='bfloat16')
    assert ow.loss_scaler is None and ow.cast_dtype == torch.bfloat16
    model = torch.nn.Linear(4, 4)
    with ow.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        assert model(torch.randn(2, 4)).dtype == torch.bfloat16
    ow.update_params((p * 2).sum())
    assert not ow.last_step_skipped and ow.last_loss_finite
    assert torch.allclose(p.detach(), torch.full((4,), 0.8))
    assert ow.step_status() == 'ok' and 'loss_scaler' not in ow.state_dict()


def test_amp_wrapper_tells_overflow_skip_from_nonfinite_loss():
    """Dynamic loss scaling (GradScaler also runs on CPU): gradients that overflow
    once scaled skip the step (benign), a non-finite loss is flagged as real."""
    p, ow = _toy_wrapper(dtype='bfloat16', loss_scale='dynamic')
    scale0 = ow.loss_scale
    ow.update_params((p * 1e35).sum())  # loss finite, scaled grads = inf
    assert ow.last_step_skipped and ow.last_loss_finite
    assert ow.step_status() == 'skipped_overflow'
    assert ow.skipped_steps == 1 and ow.consecutive_skips == 1
    assert torch.equal(p.detach(), torch.ones(4))  # the step really was skipped
    assert ow.loss_scale < scale0  # and the scale backed off
    ow.update_params(p.sum())  # a normal step
    assert not ow.last_step_skipped and ow.consecutive_skips == 0 and ow.skipped_steps == 1
    assert not torch.equal(p.detach(), torch.ones(4))
    ow.update_params(p.sum() * float('nan'))
    assert not ow.last_loss_finite and ow.step_status() == 'nonfinite_loss'
    state = ow.state_dict()
    assert 'loss_scaler' in state
    p2, ow2 = _toy_wrapper(dtype='bfloat16', loss_scale='dynamic')
    ow2.load_state_dict(state)
    assert ow2.loss_scale == ow.loss_scale


# ------------------------------------------------------------------ config switches


def test_apply_fast_paths_edits_the_config():
    from segkit.engine.fast_paths import FastPaths, apply_fast_paths, set_amp
    cfg = load_config(DEMO_SEG)
    fp = apply_fast_paths(cfg, amp='bf16', compile=True, channels_last=True,
                          fused_optimizer=True, device='cpu')
    ow = cfg.optim_wrapper
    assert (ow.type, ow.dtype, ow.loss_scale) == ('SegkitAmpOptimWrapper', 'bfloat16', 'auto')
    assert cfg.runner_type == 'SegkitRunner' and 'segkit.plugins' in cfg.custom_imports.imports
    assert cfg.fast_paths['compile'] == 'auto' and cfg.fast_paths['channels_last']
    # not requested: stock (the demo config has no fast_paths; its cudnn_benchmark)
    assert cfg.fast_paths['tf32'] is False and cfg.fast_paths['fast_attention'] is False
    assert cfg.env_cfg.cudnn_benchmark is False
    plain = load_config(DEMO_SEG)
    apply_fast_paths(plain)  # nothing requested: the config runs as written
    assert 'runner_type' not in plain and 'fast_paths' not in plain
    assert plain.optim_wrapper.type == 'OptimWrapper'
    assert FastPaths.from_cfg(cfg).compile == fp.compile == 'auto'
    with pytest.raises(SegkitError, match='needs a GPU'):
        apply_fast_paths(load_config(DEMO_SEG), amp='fp16', device='cpu')
    set_amp(cfg, 'fp32')
    assert cfg.optim_wrapper.type == 'OptimWrapper' and 'dtype' not in cfg.optim_wrapper
    cfg.optim_wrapper.update(type='AmpOptimWrapper', dtype='bfloat16')
    set_amp(cfg, None, device='cpu')  # mmengine's wrapper -> segkit's (CPU-capable)
    assert cfg.optim_wrapper.type == 'SegkitAmpOptimWrapper'


def test_fused_optimizer_rules():
    from segkit.engine.fast_paths import set_fused_optimizer
    cfg = load_config(DEMO_SEG)
    assert set_fused_optimizer(cfg, 'auto', device='cpu') is False
    assert 'fused' not in cfg.optim_wrapper.optimizer
    assert set_fused_optimizer(cfg, 'auto', device='cuda') is True
    assert cfg.optim_wrapper.optimizer.fused is True
    cfg.optim_wrapper.optimizer.type = 'RMSprop'
    cfg.optim_wrapper.optimizer.pop('fused')
    with pytest.raises(SegkitError, match='no fused kernel'):
        set_fused_optimizer(cfg, True)
    assert set_fused_optimizer(cfg, 'auto', device='cuda') is False


@pytest.mark.parametrize('path', AMP_CONFIGS, ids=lambda p: p.stem)
def test_amp_configs(path):
    from segkit.engine.epoch_checks import epoch_invariant_errors
    from segkit.engine.fast_paths import FastPaths, amp_of
    cfg = load_config(str(path))
    parent = load_config(str(path).replace('_amp.py', '.py'))
    assert epoch_invariant_errors(cfg) == []
    assert amp_of(cfg) == 'bf16' and cfg.runner_type == 'SegkitRunner'
    assert FastPaths.from_cfg(cfg).fused_optimizer == 'auto'
    # only the arithmetic changes: optimizer, clipping, schedule, data as the parent
    for key in ('optimizer', 'clip_grad', 'paramwise_cfg'):
        assert cfg.optim_wrapper.get(key) == parent.optim_wrapper.get(key)
    assert cfg.param_scheduler == parent.param_scheduler
    assert cfg.train_dataloader == parent.train_dataloader
    assert cfg.model == parent.model


def test_segkit_runner_applies_model_switches(tmp_path):
    """The runner registry finds SegkitRunner; it resolves fused AdamW for the device
    and applies the model switches before wrapping."""
    import segkit.engine.fast_paths  # noqa: F401
    from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
    from segkit.bench.train_bench import quiet_mmengine
    from segkit.engine.fast_paths import apply_fast_paths
    from segkit.bench.synthetic import strip_pretrained
    quiet_mmengine()
    cfg = load_config(DEMO_SEG)
    apply_fast_paths(cfg, amp='bf16', channels_last=True, fused_optimizer=True,
                     fast_attention=True, device='cpu')
    cfg.model = strip_pretrained(cfg.model)
    cfg.work_dir = str(tmp_path)
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    for split in ('train', 'val', 'test'):  # never iterated here
        cfg[f'{split}_dataloader'].dataset.data_root = str(tmp_path)
    from mmseg.registry import RUNNERS
    assert RUNNERS.get('SegkitRunner') is MMENGINE_RUNNERS.get('SegkitRunner')
    runner = RUNNERS.build(cfg)
    assert type(runner).__name__ == 'SegkitRunner'
    model = runner.model
    conv = model.backbone.layers[0][0].projection.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    mha = model.backbone.layers[0][1][0].attn.attn
    assert getattr(mha, '_segkit_fast_attention', False)
    assert runner.cfg.optim_wrapper.optimizer.fused is True


# ------------------------------------------------------------------ model switches


def test_fast_attention_is_the_same_maths():
    from segkit.engine.fast_paths import enable_fast_attention
    cfg, model = _model(DEMO_SEG)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x, mode='tensor')
        assert enable_fast_attention(model) > 0
        assert enable_fast_attention(model) > 0  # idempotent
        out = model(x, mode='tensor')
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    # Mask2Former: the decoder's self- and masked cross-attention (bool attn_mask)
    from segkit.bench.flops import _forward
    cfg, m2f = _model(DEMO_M2F)
    m2f.eval()
    data = m2f.data_preprocessor(_batch(cfg), True)
    with torch.no_grad():
        ref = _forward(m2f, data)
        assert enable_fast_attention(m2f) >= 6  # 3 decoder layers x (self + cross)
        out = _forward(m2f, data)
    for a, b in zip(out, ref):  # per-layer class scores, per-layer mask logits
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4)


def test_channels_last_trains():
    from segkit.engine.fast_paths import enable_channels_last
    from segkit.bench.synthetic import train_step
    cfg, model = _model(DEMO_SEG)
    assert enable_channels_last(model) > 0
    assert model.backbone.layers[0][0].projection.weight.is_contiguous(
        memory_format=torch.channels_last)
    out = model.data_preprocessor(_batch(cfg), True)
    assert out['inputs'].is_contiguous(memory_format=torch.channels_last)
    losses = train_step(model, cfg, _batch(cfg))
    assert math.isfinite(float(losses['loss']))


def test_compile_tiny_segformer_trains_and_keeps_state_dict_keys():
    """torch.compile of backbone + decode head forward ('auto'); aot_eager keeps the
    test quick (dynamo + AOTAutograd; inductor codegen on 2 CPU cores takes ~2 min)."""
    from mmengine.optim import build_optim_wrapper
    from segkit.engine.fast_paths import compile_model
    cfg, model = _model(DEMO_SEG)
    keys = list(model.state_dict())
    assert compile_model(model, True, backend='aot_eager') == ['backbone',
                                                               'decode_head.forward']
    assert compile_model(model, True, backend='aot_eager') == []  # idempotent
    assert list(model.state_dict()) == keys
    ow = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    for _ in range(2):
        losses = model.train_step(_batch(cfg), ow)
        assert math.isfinite(float(losses['loss'].detach()))
    model.eval()  # eval runs the eager forward (val images vary in size)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 96, 64), mode='tensor').shape[-2:] == (24, 16)


def test_compile_auto_leaves_mask2former_head_eager():
    from segkit.engine.fast_paths import compile_model
    _, model = _model(DEMO_M2F)
    assert compile_model(model, 'auto', backend='eager') == ['backbone']


# ------------------------------------------------------------------ AMP safety


def test_amp_safe_patch_is_idempotent_and_runs_sampling_in_fp32(monkeypatch):
    import mmcv.ops.multi_scale_deform_attn as msda
    from mmcv.ops import MultiScaleDeformableAttention
    from mmdet.models.dense_heads.maskformer_head import MaskFormerHead

    import segkit.plugins.models.amp_safe as amp_safe
    amp_safe.patch()
    amp_safe.patch()
    assert amp_safe.is_patched() and MaskFormerHead.loss_by_feat._segkit_amp_safe
    assert MaskFormerHead.loss_by_feat._segkit_orig.__name__ == 'loss_by_feat'
    seen = []
    orig = amp_safe._ORIG['pytorch']

    def spy(value, shapes, locs, weights):
        seen.append((value.dtype, locs.dtype, weights.dtype, torch.is_autocast_enabled('cpu')))
        return orig(value, shapes, locs, weights)
    monkeypatch.setitem(amp_safe._ORIG, 'pytorch', spy)
    torch.manual_seed(0)
    attn = MultiScaleDeformableAttention(embed_dims=32, num_heads=4, num_levels=2,
                                         num_points=2, batch_first=True, dropout=0.0)
    shapes = torch.tensor([[8, 8], [4, 4]])
    start = torch.tensor([0, 64])
    q = torch.randn(2, 80, 32)
    ref_pts = torch.rand(2, 80, 2, 2)
    kwargs = dict(value=q, reference_points=ref_pts, spatial_shapes=shapes,
                  level_start_index=start)
    ref = attn(q, **kwargs)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = attn(q, **kwargs)
    assert seen[-1] == (torch.float32, torch.float32, torch.float32, False)
    assert msda.multi_scale_deformable_attn_pytorch is \
        amp_safe.fp32_multi_scale_deformable_attn_pytorch
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)
    amp_safe.unpatch()
    try:
        assert not amp_safe.is_patched()
        assert not getattr(MaskFormerHead.loss_by_feat, '_segkit_amp_safe', False)
    finally:
        amp_safe.patch()
    assert amp_safe.is_patched()


@needs_bf16
@pytest.mark.parametrize('config,size,tol', [
    (DEMO_SEG, 64, 2e-3),
    (str(ROOT / 'configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512.py'), 64, 2e-3),
    (DEMO_M2F, 64, 5e-3),
    (str(ROOT / 'configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512.py'), 64,
     5e-3),
], ids=['segformer-demo', 'segformer-b2', 'mask2former-demo', 'mask2former-swin-t'])
def test_fp32_and_bf16_losses_match(config, size, tol):
    import segkit.plugins.models.amp_safe as amp_safe
    amp_safe.patch()
    cfg, model = _model(config, (size, size))
    model.train()
    batch = _batch(cfg, 2, (size, size))
    full, terms32 = _losses(model, batch, amp=False)
    half, terms16 = _losses(model, batch, amp=True)
    assert math.isfinite(full) and math.isfinite(half)
    assert abs(half - full) / abs(full) < tol, (full, half)
    for key, value in terms32.items():
        assert abs(terms16[key] - value) <= 5e-2 * abs(value) + 1e-3, (key, value,
                                                                       terms16[key])


@needs_bf16
def test_bf16_training_steps_through_the_amp_wrapper():
    """The real optimizer wrapper of the config, switched to bf16: steps, no scaler."""
    from mmengine.optim import build_optim_wrapper
    from segkit.engine.fast_paths import set_amp
    cfg, model = _model(DEMO_M2F)
    set_amp(cfg, 'bf16', device='cpu')
    ow = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    assert type(ow).__name__ == 'SegkitAmpOptimWrapper' and ow.loss_scaler is None
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = model.train_step(_batch(cfg), ow)
    assert math.isfinite(float(losses['loss'].detach())) and ow.step_status() == 'ok'
    changed = sum(not p.detach().equal(before[n]) for n, p in model.named_parameters())
    assert changed > 0.5 * len(before)


# ------------------------------------------------------------------ fast transforms


def _images(n=12, seed=0, h=300, w=420):
    import cv2
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = cv2.resize(rng.integers(0, 256, (6, 8, 3)).astype(np.uint8), (w, h),
                         interpolation=cv2.INTER_CUBIC)
        img = np.clip(img.astype(np.int16) + rng.integers(-30, 30, img.shape), 0,
                      255).astype(np.uint8)
        lab = cv2.resize(rng.integers(0, 4, (3, 4)).astype(np.uint8), (w, h),
                         interpolation=cv2.INTER_NEAREST)
        lab[:20] = 255
        out.append((img, lab))
    return out


@pytest.mark.parametrize('stock,fast,kwargs', [
    ('RandomCrop', 'FastRandomCrop', dict(crop_size=(256, 256), cat_max_ratio=0.75)),
    ('RandomCrop', 'FastRandomCrop', dict(crop_size=(256, 256), cat_max_ratio=0.4)),
    ('RandomCrop', 'FastRandomCrop', dict(crop_size=(512, 512), cat_max_ratio=0.75)),
    ('PhotoMetricDistortion', 'FastPhotoMetricDistortion', {}),
], ids=['crop', 'crop-strict', 'crop-larger-than-image', 'photometric'])
def test_fast_transforms_are_output_identical(stock, fast, kwargs):
    import segkit.plugins.transforms  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmseg.registry import TRANSFORMS
    init_default_scope('mmseg')
    a = TRANSFORMS.build(dict(type=stock, **kwargs))
    b = TRANSFORMS.build(dict(type=fast, **kwargs))
    for i, (img, lab) in enumerate(_images() * 3):
        outs = []
        for t in (a, b):
            np.random.seed(i)
            r = t(dict(img=img.copy(), gt_seg_map=lab.copy(), seg_fields=['gt_seg_map'],
                       img_shape=img.shape[:2]))
            outs.append(r)
        assert np.array_equal(outs[0]['img'], outs[1]['img']), i
        assert np.array_equal(outs[0]['gt_seg_map'], outs[1]['gt_seg_map']), i
        assert outs[0]['img_shape'] == outs[1]['img_shape']


# ------------------------------------------------------------------ GPU (run on the H100)


@pytest.mark.gpu
@pytest.mark.parametrize('config,size', [
    (str(ROOT / 'configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512.py'), 256),
    (str(ROOT / 'configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512.py'), 256),
], ids=['segformer-b2', 'mask2former-swin-t'])
@pytest.mark.parametrize('dtype', ['bf16', 'fp16'])
def test_gpu_fp32_and_amp_losses_match(config, size, dtype):
    """On CUDA: mmcv's deformable-attention kernel (in fp32 through amp_safe), cuDNN,
    tensor cores. Same tolerances as on CPU; TF32 off for the fp32 reference."""
    import segkit.plugins.models.amp_safe as amp_safe
    from segkit.bench.train_bench import quiet_mmengine
    from segkit.bench.synthetic import build_model
    amp_safe.patch()
    quiet_mmengine()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        cfg = load_config(config)
        cfg.model.data_preprocessor.size = (size, size)
        torch.manual_seed(0)
        model = build_model(cfg, device='cuda').train()
        batch = _batch(cfg, 2, (size, size))

        def run(amp):
            torch.manual_seed(1)
            data = model.data_preprocessor(copy.copy(batch), True)
            cast = {'bf16': torch.bfloat16, 'fp16': torch.float16}[dtype]
            with torch.no_grad(), torch.autocast('cuda', dtype=cast, enabled=amp):
                total, log_vars = model.parse_losses(model(**data, mode='loss'))
            return float(total)

        full, half = run(False), run(True)
        assert math.isfinite(half) and abs(half - full) / abs(full) < 5e-3, (full, half)
    finally:
        torch.backends.cudnn.allow_tf32 = True


@pytest.mark.gpu
def test_gpu_fp16_wrapper_scales_and_fuses():
    """fp16 on CUDA: dynamic GradScaler, fused AdamW, overflow skip detected."""
    from segkit.plugins.optim import SegkitAmpOptimWrapper
    p = torch.nn.Parameter(torch.ones(8, device='cuda'))
    opt = torch.optim.AdamW([p], lr=0.1, fused=True)
    ow = SegkitAmpOptimWrapper(optimizer=opt, dtype='float16', loss_scale='auto',
                               clip_grad=dict(max_norm=1.0))
    assert ow.loss_scaler is not None
    ow.update_params((p * 1e35).sum())
    assert ow.last_step_skipped and ow.last_loss_finite
    assert torch.equal(p.detach(), torch.ones(8, device='cuda'))
    ow.update_params(p.sum())
    assert not ow.last_step_skipped and not torch.equal(p.detach(),
                                                        torch.ones(8, device='cuda'))
