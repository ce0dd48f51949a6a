"""The pinned stack imports, and mmcv's compiled ops really compute."""
import importlib

import pytest
import torch
import torch.nn.functional as F


def test_stack_versions_and_imports():
    import mmcv
    import mmdet
    import mmengine
    import mmseg
    from conftest import ROOT
    from segkit.facts import MMCV_VERSION, TORCH_MAX, TORCH_MIN
    pins = dict(line.split('#')[0].strip().split('==') for line in
                (ROOT / 'requirements.txt').read_text().splitlines()
                if '==' in line.split('#')[0])
    assert mmcv.__version__ == MMCV_VERSION
    assert mmengine.__version__ == pins['mmengine']
    assert mmseg.__version__ == pins['mmsegmentation']
    assert mmdet.__version__ == pins['mmdet']
    version = tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2])
    assert tuple(map(int, TORCH_MIN.split('.'))) <= version < tuple(map(int, TORCH_MAX.split('.')))
    for mod in ('mmcv._ext', 'mmseg.models', 'mmdet.models', 'segkit.plugins',
                'pkg_resources'):
        importlib.import_module(mod)


def test_compiled_deform_conv_matches_conv2d():
    """With zero offsets (and mask 1) deformable convolution is plain convolution:
    mmcv's compiled CPU kernels must reproduce F.conv2d."""
    from mmcv.ops import DeformConv2d, ModulatedDeformConv2d
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 11)
    dcn = DeformConv2d(4, 6, 3, padding=1, bias=False)
    offset = torch.zeros(2, 2 * 9, 9, 11)
    ref = F.conv2d(x, dcn.weight, padding=1)
    assert torch.allclose(dcn(x, offset), ref, atol=1e-5)
    mdcn = ModulatedDeformConv2d(4, 6, 3, padding=1, bias=True)
    mask = torch.ones(2, 9, 9, 11)
    ref = F.conv2d(x, mdcn.weight, mdcn.bias, padding=1)
    assert torch.allclose(mdcn(x, offset, mask), ref, atol=1e-5)


def _msda_inputs(device='cpu', dtype=torch.float64):
    torch.manual_seed(0)
    shapes = torch.tensor([[6, 4], [3, 2]], device=device)
    start = torch.cat((shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]))
    n = int(shapes.prod(1).sum())
    value = torch.rand(2, n, 2, 4, device=device, dtype=dtype)
    loc = torch.rand(2, 5, 2, 2, 3, 2, device=device, dtype=dtype)
    weights = torch.rand(2, 5, 2, 2, 3, device=device, dtype=dtype) + 1e-5
    weights = weights / weights.sum((-1, -2), keepdim=True)
    return value, shapes, start, loc, weights


def test_msda_module_on_cpu_equals_pytorch_reference():
    """MultiScaleDeformableAttention (Mask2Former's pixel decoder) on CPU: its
    forward equals sampling with mmcv's pure-PyTorch reference."""
    from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttention,
                                                  multi_scale_deformable_attn_pytorch)
    torch.manual_seed(0)
    attn = MultiScaleDeformableAttention(embed_dims=16, num_heads=2, num_levels=2,
                                         num_points=3, batch_first=True).eval()
    shapes = torch.tensor([[6, 4], [3, 2]])
    start = torch.cat((shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]))
    n = int(shapes.prod(1).sum())
    query, value = torch.randn(2, 5, 16), torch.randn(2, n, 16)
    ref_points = torch.rand(2, 5, 2, 2)
    out = attn(query, value=value, reference_points=ref_points, spatial_shapes=shapes,
               level_start_index=start)
    # the same computation, written out around the reference sampler
    v = attn.value_proj(value).view(2, n, 2, 8)
    offs = attn.sampling_offsets(query).view(2, 5, 2, 2, 3, 2)
    w = attn.attention_weights(query).view(2, 5, 2, 6).softmax(-1).view(2, 5, 2, 2, 3)
    norm = torch.stack([shapes[..., 1], shapes[..., 0]], -1)
    loc = ref_points[:, :, None, :, None, :] + offs / norm[None, None, None, :, None, :]
    expected = attn.output_proj(multi_scale_deformable_attn_pytorch(v, shapes, loc, w)) + query
    assert torch.allclose(out, expected, atol=1e-6)


def test_msda_compiled_kernel_has_no_cpu_implementation():
    """mmcv 2.1.0 compiles ms_deform_attn for CUDA only; on CPU the module takes the
    PyTorch path above. If a future mmcv adds a CPU kernel this fails: then compare
    it to the reference here."""
    from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction
    kernel = getattr(MultiScaleDeformableAttnFunction, '_segkit_kernel',  # segkit's routing
                     MultiScaleDeformableAttnFunction)                     # may wrap it
    value, shapes, start, loc, weights = _msda_inputs()
    with pytest.raises(RuntimeError, match='implementation for device cpu not found'):
        kernel.apply(value, shapes, start, loc, weights, 64)


@pytest.mark.gpu
def test_msda_cuda_kernel_matches_reference_forward_and_backward():
    from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttnFunction,
                                                  multi_scale_deformable_attn_pytorch)
    value, shapes, start, loc, weights = _msda_inputs('cuda', torch.float64)
    value.requires_grad_(True)
    out = MultiScaleDeformableAttnFunction.apply(value, shapes, start, loc, weights, 64)
    ref = multi_scale_deformable_attn_pytorch(value, shapes, loc, weights)
    assert torch.allclose(out, ref, atol=1e-8)
    g_out, = torch.autograd.grad(out.sum(), value)
    g_ref, = torch.autograd.grad(ref.sum(), value)
    assert torch.allclose(g_out, g_ref, atol=1e-8)
