"""The GPU path without mmcv's CUDA kernels (segkit/plugins/models/ops_routing.py).

mmcv 2.1.0 compiles neither routed op for CPU, so on CPU a tensor meets exactly the
failure a CUDA tensor meets with an mmcv built without CUDA kernels ("implementation
for device ... not found"): the routing decision is tested on that real failure. The
PyTorch paths are checked, output and gradients, against direct transcriptions of
the CUDA kernels' arithmetic (mmcv's ms_deform_attn_im2col_bilinear and
sigmoid_focal_loss_forward_cuda_kernel). The gpu-marked tests compare kernel and
PyTorch path on CUDA.
"""
import math

import pytest
import torch

import segkit.plugins  # noqa: F401  (patches: amp_safe, ops_routing)
from segkit.plugins.models import amp_safe, ops_check, ops_routing
from segkit.plugins.models.ops_routing import KERNEL, PYTORCH


@pytest.fixture(autouse=True)
def _fresh_routing(monkeypatch):
    monkeypatch.delenv(ops_routing.ENV, raising=False)
    amp_safe.patch()
    ops_routing.patch_focal()
    ops_routing.reset()
    yield
    ops_routing.reset()


# ------------------------------------------------------------------ references


def msda_kernel_reference(value, shapes, loc, weights):
    """mmcv's CUDA im2col: bilinear sampling at loc * size - 0.5, zeros outside."""
    bs, _, heads, ch = value.shape
    _, nq, _, levels, points, _ = loc.shape
    starts = [0] + torch.cumsum(shapes.prod(1), 0).tolist()[:-1]
    out = value.new_zeros(bs, nq, heads, ch)
    for b in range(bs):
        for q in range(nq):
            for h in range(heads):
                acc = value.new_zeros(ch)
                for lv in range(levels):
                    H, W = shapes[lv].tolist()
                    v = value[b, starts[lv]:starts[lv] + H * W, h].view(H, W, ch)
                    for p in range(points):
                        x = loc[b, q, h, lv, p, 0] * W - 0.5
                        y = loc[b, q, h, lv, p, 1] * H - 0.5
                        x0, y0 = math.floor(x.item()), math.floor(y.item())
                        lx, ly = x - x0, y - y0
                        for yy, xx, w in ((y0, x0, (1 - ly) * (1 - lx)),
                                          (y0, x0 + 1, (1 - ly) * lx),
                                          (y0 + 1, x0, ly * (1 - lx)),
                                          (y0 + 1, x0 + 1, ly * lx)):
                            if 0 <= yy < H and 0 <= xx < W:
                                acc = acc + weights[b, q, h, lv, p] * w * v[yy, xx]
                out[b, q, h] = acc
    return out.flatten(2)


def focal_kernel_reference(pred, target, gamma, alpha):
    """mmcv's sigmoid_focal_loss kernel, elementwise ('none'); target C = background."""
    p = pred.sigmoid()
    pos = target[:, None] == torch.arange(pred.size(1))
    tiny = torch.finfo(torch.float32).tiny
    term_p = (1 - p) ** gamma * torch.log(p.clamp(min=tiny))
    term_n = p ** gamma * torch.log((1 - p).clamp(min=tiny))
    return torch.where(pos, -alpha * term_p, -(1 - alpha) * term_n)


def _grads(fn, *tensors):
    tensors = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in tensors]
    out = fn(*tensors)
    out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
    return out.detach(), [t.grad for t in tensors if t.requires_grad]


# ------------------------------------------------------------------ decision


def test_choose_rule():
    assert ops_routing.choose(None) == KERNEL
    assert ops_routing.choose('RuntimeError: no impl') == PYTORCH
    assert ops_routing.choose(None, forced=PYTORCH) == PYTORCH
    assert ops_routing.choose('RuntimeError: no impl', forced=KERNEL) == KERNEL


@pytest.mark.parametrize('op', list(ops_routing.OPS))
def test_no_kernel_on_this_device_routes_to_pytorch(op):
    """The real probe on CPU tensors: mmcv 2.1.0 has no CPU kernel for either op,
    which is the failure of a CUDA tensor under an mmcv built without CUDA."""
    with pytest.raises(RuntimeError, match='not found'):
        ops_check.PROBES[op]('cpu')
    d = ops_routing.decide(op, 'cpu')
    assert (d.path, d.device) == (PYTORCH, 'cpu')
    assert 'implementation for device cpu not found' in d.reason
    assert ops_routing.use_kernel(op, torch.device('cpu')) is False
    assert ops_routing._warned == set()  # CPU: the PyTorch path is the normal one


def test_forced_kernel_fails_like_stock_and_auto_routes(monkeypatch):
    value, shapes, start, loc, weights = ops_check.msda_inputs('cpu')
    fn = amp_safe.Fp32MultiScaleDeformableAttnFunction
    monkeypatch.setenv(ops_routing.ENV, 'kernel')
    assert ops_routing.decide('msda', 'cpu').path == KERNEL
    with pytest.raises(RuntimeError, match='not found'):
        fn.apply(value, shapes, start, loc, weights, 64)
    monkeypatch.setenv(ops_routing.ENV, 'auto')
    out = fn.apply(value, shapes, start, loc, weights, 64)
    assert out.shape == (1, 3, 16) and torch.isfinite(out).all()


def test_warning_says_path_cost_and_fix():
    d = ops_routing.Decision('msda', 'cuda:0', PYTORCH, 'no kernel (RuntimeError: x)')
    text = ops_routing.warning_text(d)
    for part in ('MultiScaleDeformableAttention', 'cuda:0', 'PyTorch path',
                 'multi_scale_deformable_attn_pytorch', 'slower', 'nvcc',
                 'MMCV_REBUILD=1 make install'):
        assert part in text


# ------------------------------------------------------------------ same maths


def test_msda_pytorch_path_matches_kernel_arithmetic():
    value, shapes, start, loc, weights = ops_check.msda_inputs('cpu', torch.float64, seed=3)
    loc = loc * 1.4 - 0.2  # some samples fall outside the map (zero padding)
    routed = amp_safe.Fp32MultiScaleDeformableAttnFunction.apply
    out, grads = _grads(lambda v, lc, w: routed(v, shapes, start, lc, w, 64).double(),
                        value, loc, weights)
    ref, ref_grads = _grads(lambda v, lc, w: msda_kernel_reference(v.float(), shapes,
                                                                   lc.float(), w.float()
                                                                   ).double(),
                            value, loc, weights)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('alpha,class_weight,classes', [
    (0.25, None, 4), (0.5, [1.0, 2.0, 0.5, 1.0], 4), ([0.2, 0.4, 0.6, 0.8], None, 4),
    (0.5, None, 1)], ids=['alpha', 'class-weight', 'alpha-list', 'one-class'])
def test_focal_pytorch_path_matches_kernel_arithmetic(alpha, class_weight, classes):
    """mmseg FocalLoss's CUDA-branch call, routed: its arguments as that branch
    builds them (class indices, one-hot, ignore mask), the loss as the kernel does."""
    import torch.nn.functional as F

    from mmseg.models.losses.focal_loss import sigmoid_focal_loss
    assert sigmoid_focal_loss is ops_routing.routed_sigmoid_focal_loss
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(12, classes, generator=g) * 3
    target = torch.randint(0, classes, (12,), generator=g)
    target[[2, 7]] = 255  # ignored pixels
    valid = (target != 255).view(-1, 1)
    target = torch.where(valid.view(-1), target, torch.zeros_like(target))
    onehot = F.one_hot(target, classes + 1)
    if classes == 1:  # mmseg's one-class branch
        onehot, target = onehot[:, 1], 1 - target
    else:
        onehot = onehot[:, :classes]
    weight = torch.rand(12, generator=g)

    def routed(p):
        return sigmoid_focal_loss(p, target, onehot, weight, gamma=2.0, alpha=alpha,
                                  class_weight=class_weight, valid_mask=valid,
                                  reduction='mean')

    def kernel(p):  # mmseg's own CUDA-branch wrapping of the kernel's elementwise loss
        if isinstance(alpha, list):
            a = p.new_tensor(alpha)
            loss = focal_kernel_reference(p, target, 2.0, 0.5) * 2
            w = a * onehot.view(12, -1) + (1 - a) * (1 - onehot.view(12, -1))
        else:
            loss, w = focal_kernel_reference(p, target, 2.0, alpha), torch.ones(1, classes)
        w = w * weight.view(-1, 1) * valid
        if class_weight is not None:
            w = w * p.new_tensor(class_weight)
        return (loss * w).mean()

    out, (grad,) = _grads(routed, pred)
    ref, (ref_grad,) = _grads(kernel, pred)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ GPU


def _msda_on(device, seed=5):
    value, shapes, start, loc, weights = ops_check.msda_inputs(device, seed=seed)
    loc = loc * 1.4 - 0.2
    fn = amp_safe.Fp32MultiScaleDeformableAttnFunction.apply
    out, grads = _grads(lambda v, lc, w: fn(v, shapes, start, lc, w, 64), value, loc, weights)
    return out.cpu(), [g.cpu() for g in grads]


@pytest.mark.gpu
def test_gpu_msda_routed_matches_cpu_and_kernel_matches_pytorch_path(monkeypatch):
    """Whatever path CUDA takes here (kernel, or PyTorch without kernels) agrees with
    the CPU PyTorch path; where the kernel exists, it agrees with the forced PyTorch
    path on CUDA too. Without the kernel, one warning was logged."""
    d = ops_routing.decide('msda', 'cuda')
    out, grads = _msda_on('cuda')
    ref, ref_grads = _msda_on('cpu')
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-3, atol=1e-4)
    if d.path == PYTORCH:
        assert 'msda' in ops_routing._warned
        return
    monkeypatch.setenv(ops_routing.ENV, 'pytorch')
    out_p, grads_p = _msda_on('cuda')
    torch.testing.assert_close(out_p, out, rtol=1e-4, atol=1e-5)
    for p, k in zip(grads_p, grads):
        torch.testing.assert_close(p, k, rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
def test_gpu_msda_runs_under_bf16_autocast_either_way(monkeypatch):
    value, shapes, start, loc, weights = ops_check.msda_inputs('cuda', seed=6)
    fn = amp_safe.Fp32MultiScaleDeformableAttnFunction.apply
    for path in ('auto', 'pytorch'):
        monkeypatch.setenv(ops_routing.ENV, path)
        with torch.autocast('cuda', dtype=torch.bfloat16):
            out = fn(value.bfloat16(), shapes, start, loc, weights, 64)
        assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


def _focal_on(device, path, monkeypatch):
    from segkit.plugins.models.losses import IgnoreSafeFocalLoss
    monkeypatch.setenv(ops_routing.ENV, path)
    g = torch.Generator().manual_seed(1)
    pred = (torch.randn(2, 5, 8, 8, generator=g) * 2).to(device)
    label = torch.randint(0, 5, (2, 8, 8), generator=g).to(device)
    label[0, :2] = 255
    loss = IgnoreSafeFocalLoss(use_sigmoid=True, gamma=2.0, alpha=0.5)
    out, (grad,) = _grads(lambda p: loss(p, label).reshape(1), pred)
    return out.cpu(), grad.cpu()


@pytest.mark.gpu
@pytest.mark.parametrize('path', ['auto', 'pytorch'])
def test_gpu_focal_loss_matches_cpu(path, monkeypatch):
    """IgnoreSafeFocalLoss on CUDA (mmseg's CUDA branch: the kernel, or the routed
    PyTorch path) equals its CPU path, loss and gradient."""
    out, grad = _focal_on('cuda', path, monkeypatch)
    ref, ref_grad = _focal_on('cpu', 'auto', monkeypatch)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-3, atol=1e-6)


# ------------------------------------------------------------------ doctor


def test_doctor_shows_the_path_per_op():
    from segkit import doctor
    cpu = doctor.Facts(op_paths=ops_routing.paths('cpu'))
    rows = {r.name: r for r in doctor.op_path_rows(cpu)}
    assert set(rows) == {'op msda on cpu', 'op sigmoid_focal_loss on cpu'}
    assert all(r.status == doctor.PASS and 'PyTorch path' in r.detail for r in rows.values())
    # a GPU whose mmcv has no CUDA kernels: the same decisions, on cuda:0
    gpu = doctor.Facts(op_paths=[ops_routing.Decision(x.op, 'cuda:0', x.path, x.reason)
                                 for x in cpu.op_paths])
    rows = doctor.op_path_rows(gpu)
    assert [r.status for r in rows] == [doctor.WARN, doctor.WARN]
    assert 'MMCV_REBUILD=1 make install' in rows[0].fix and 'slower' in rows[0].detail


def test_benchmark_inference_autocasts_as_the_val_loop_does():
    """_amp recipes train in bf16 but mmengine's ValLoop runs fp32 unless val_cfg.fp16;
    the benchmark measures inference the same way, and never autocasts on CPU (bf16
    autocast there cost 1.3-1.45x fp32's CPU time for SegFormer-B2)."""
    from mmengine.config import Config

    from segkit.bench.train_bench import inference_amp
    cfg = Config(dict(val_cfg=dict(type='ValLoop')))
    assert inference_amp(cfg, 'bf16', 'cpu') is None
    assert inference_amp(cfg, 'bf16', 'cuda') is None
    cfg = Config(dict(val_cfg=dict(type='ValLoop', fp16=True)))
    assert inference_amp(cfg, 'bf16', 'cuda:0') == 'bf16'
    assert inference_amp(cfg, 'bf16', 'cpu') is None
    assert inference_amp(cfg, None, 'cuda') is None
