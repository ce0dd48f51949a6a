"""Pretrained-weight converters (segkit/convert/weights.py), checked numerically.

Hugging Face paths: transformers' own SegFormer / Swin models with random weights,
saved as the hub holds them (save_pretrained), vs mmseg's backbones loaded from the
converted weights; the 4 feature maps must match.
Official-release paths: official-layout dicts come from an independent key/shape
list of the releases' layouts (NVlabs mix_transformer.py, microsoft
swin_transformer.py); the HF -> official rename is checked against that list,
which makes the official -> mmseg step numerically checked too.
MobileNetV3: torchvision's exact key list (fixture) + the mmseg strict load; the
numerical check against torchvision runs where torchvision imports.
"""
import io
import json
import os
import runpy
import sys
import types

import pytest
import torch
import torch.nn.functional as F

from segkit.convert import weights as W
from segkit.errors import SegkitError

transformers = pytest.importorskip('transformers', reason='reference models for the '
                                   'converter tests (requirements-dev.txt)')

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')
TV_KEYS = os.path.join(FIXTURES, 'torchvision_deeplabv3_mobilenet_v3_large_keys.json')
ATOL = 1e-4  # float32 through up to 16 blocks; measured max diffs are ~1e-5


def _randomize(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial values everywhere (norm gains/biases too), so no mapping hides
    behind an init of ones or zeros."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            else:
                p.copy_(torch.rand(p.shape, generator=g) - 0.5 + ('weight' in name))


def _random_tensors(shapes: dict, seed: int = 0) -> dict:
    """Random tensors for a key/shape list, scaled so activations neither die nor
    explode through a deep net (a vanishing signal would make any mapping
    "match"): fan-in-scaled weights, norm gains around 1, BN variances around 1."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in shapes.items():
        if k.endswith(('num_batches_tracked', 'relative_position_index')):
            out[k] = torch.randint(0, 10, shape, generator=g, dtype=torch.long)
        elif k.endswith('running_var') or (len(shape) == 1 and k.endswith('weight')):
            out[k] = torch.rand(shape, generator=g) + 0.5
        elif len(shape) >= 2:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod()))
            out[k] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        else:
            out[k] = torch.randn(shape, generator=g) * 0.1
    return out


def _shapes(sd) -> dict:
    return {k: tuple(v.shape) for k, v in sd.items()}


def _load_pretrained(cfg: dict, path) -> torch.nn.Module:
    """The backbone as a config builds it: init_cfg Pretrained -> init_weights()."""
    model = W.build_backbone(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    model.init_weights()
    model.eval()
    return model


def _max_diffs(ours, ref) -> list:
    assert len(ours) == len(ref)
    diffs = []
    for a, b in zip(ours, ref):
        assert a.shape == b.shape, (a.shape, b.shape)
        # a live signal: features vary across positions (else any mapping matches)
        assert b.flatten(2).std(-1).mean() > 0.05 * b.abs().mean(), 'degenerate features'
        diffs.append((a - b).abs().max().item())
    return diffs


# ---------------------------------------------------------------- official layouts

def official_mit_keys(arch: str, num_classes: int = 1000) -> dict:
    """Keys and shapes of the SegFormer release (mit_bX.pth), from NVlabs'
    mix_transformer.py: OverlapPatchEmbed, Block(Attention q/kv/proj/sr/norm,
    Mlp fc1/dwconv.dwconv/fc2), a LayerNorm per stage, the ImageNet head."""
    width, depths = W.MIT_ARCHS[arch]
    heads, srs, patches = (1, 2, 5, 8), (8, 4, 2, 1), (7, 3, 3, 3)
    keys, cin = {}, 3
    for i in range(4):
        c, s = width * heads[i], i + 1
        keys[f'patch_embed{s}.proj.weight'] = (c, cin, patches[i], patches[i])
        keys[f'patch_embed{s}.proj.bias'] = (c,)
        keys[f'patch_embed{s}.norm.weight'] = keys[f'patch_embed{s}.norm.bias'] = (c,)
        for j in range(depths[i]):
            b = f'block{s}.{j}.'
            keys.update({b + 'norm1.weight': (c,), b + 'norm1.bias': (c,),
                         b + 'attn.q.weight': (c, c), b + 'attn.q.bias': (c,),
                         b + 'attn.kv.weight': (2 * c, c), b + 'attn.kv.bias': (2 * c,),
                         b + 'attn.proj.weight': (c, c), b + 'attn.proj.bias': (c,)})
            if srs[i] > 1:
                keys.update({b + 'attn.sr.weight': (c, c, srs[i], srs[i]),
                             b + 'attn.sr.bias': (c,),
                             b + 'attn.norm.weight': (c,), b + 'attn.norm.bias': (c,)})
            keys.update({b + 'norm2.weight': (c,), b + 'norm2.bias': (c,),
                         b + 'mlp.fc1.weight': (4 * c, c), b + 'mlp.fc1.bias': (4 * c,),
                         b + 'mlp.dwconv.dwconv.weight': (4 * c, 1, 3, 3),
                         b + 'mlp.dwconv.dwconv.bias': (4 * c,),
                         b + 'mlp.fc2.weight': (c, 4 * c), b + 'mlp.fc2.bias': (c,)})
        keys[f'norm{s}.weight'] = keys[f'norm{s}.bias'] = (c,)
        cin = c
    keys['head.weight'], keys['head.bias'] = (num_classes, cin), (num_classes,)
    return keys


def official_swin_keys(embed=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window=7,
                       img=224, num_classes=1000, buffers=True) -> dict:
    """Keys and shapes of the Swin release (swin_tiny_patch4_window7_224.pth
    ['model']), from microsoft's swin_transformer.py; ``buffers``: the persistent
    relative_position_index and (shifted blocks, map larger than a window)
    attn_mask buffers it also saves."""
    keys = {'patch_embed.proj.weight': (embed, 3, 4, 4), 'patch_embed.proj.bias': (embed,),
            'patch_embed.norm.weight': (embed,), 'patch_embed.norm.bias': (embed,)}
    n = len(depths)
    for i in range(n):
        dim, res = embed * 2 ** i, img // 4 // 2 ** i
        for j in range(depths[i]):
            b = f'layers.{i}.blocks.{j}.'
            keys.update({b + 'norm1.weight': (dim,), b + 'norm1.bias': (dim,),
                         b + 'attn.relative_position_bias_table': ((2 * window - 1) ** 2,
                                                                   heads[i]),
                         b + 'attn.qkv.weight': (3 * dim, dim), b + 'attn.qkv.bias': (3 * dim,),
                         b + 'attn.proj.weight': (dim, dim), b + 'attn.proj.bias': (dim,),
                         b + 'norm2.weight': (dim,), b + 'norm2.bias': (dim,),
                         b + 'mlp.fc1.weight': (4 * dim, dim), b + 'mlp.fc1.bias': (4 * dim,),
                         b + 'mlp.fc2.weight': (dim, 4 * dim), b + 'mlp.fc2.bias': (dim,)})
            if buffers:
                keys[b + 'attn.relative_position_index'] = (window ** 2, window ** 2)
                if j % 2 == 1 and res > window:
                    keys[b + 'attn_mask'] = ((res // window) ** 2, window ** 2, window ** 2)
        if i < n - 1:
            keys[f'layers.{i}.downsample.reduction.weight'] = (2 * dim, 4 * dim)
            keys[f'layers.{i}.downsample.norm.weight'] = (4 * dim,)
            keys[f'layers.{i}.downsample.norm.bias'] = (4 * dim,)
    last = embed * 2 ** (n - 1)
    keys.update({'norm.weight': (last,), 'norm.bias': (last,),
                 'head.weight': (num_classes, last), 'head.bias': (num_classes,)})
    return keys


def _hub(model, folder) -> dict:
    """The state dict as a Hugging Face hub file holds it (save_pretrained's names)."""
    from safetensors.torch import load_file
    model.save_pretrained(folder)
    return load_file(os.path.join(folder, 'model.safetensors'))


def _quiet():
    from rich.console import Console
    return Console(file=io.StringIO())


# ---------------------------------------------------------------------------- MiT

MIT_B0_INPUT = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope='module')
def hf_mit_b0(tmp_path_factory):
    # SegformerConfig's defaults are mit-b0 (hidden 32-256, depths 2,2,2,2)
    model = transformers.SegformerForImageClassification(
        transformers.SegformerConfig(num_labels=10))
    _randomize(model)
    model.eval()
    with torch.no_grad():
        feats = model.segformer(MIT_B0_INPUT, output_hidden_states=True).hidden_states
    folder = tmp_path_factory.mktemp('hub') / 'mit-b0'
    hub = _hub(model, folder)  # what nvidia/mit-b* holds
    return folder, hub, [f.clone() for f in feats]  # (B, C, H, W) per stage, after its norm


def _mit_b0_features(dst) -> list:
    mm = _load_pretrained(W.mit_backbone_cfg('b0'), dst)
    with torch.no_grad():
        return mm(MIT_B0_INPUT)


@pytest.mark.parametrize('fmt', ['hub_folder_safetensors', 'hub_bin', 'official_pth'])
def test_mit_features_match(hf_mit_b0, tmp_path, fmt):
    folder, hub, ref = hf_mit_b0
    if fmt == 'hub_folder_safetensors':
        src, layout = folder, 'hf'
    elif fmt == 'hub_bin':  # pytorch_model.bin: hub names, torch pickle
        src, layout = tmp_path / 'pytorch_model.bin', 'hf'
        torch.save(hub, src)
    else:  # the SegFormer release: a bare state dict, with its ImageNet head
        official = W.hf_mit_to_official(hub)
        expected = official_mit_keys('b0')
        expected.pop('head.weight'), expected.pop('head.bias')
        assert _shapes(official) == expected  # the exact release layout, minus the head
        official.update(_random_tensors({'head.weight': (1000, 256), 'head.bias': (1000,)}))
        src, layout = tmp_path / 'mit_b0.pth', 'official'
        torch.save(official, src)
    dst = W.convert_file('mit', src, tmp_path / 'out.pth', console=_quiet())
    meta = torch.load(dst, weights_only=True)['meta']
    assert (meta['variant'], meta['source_layout']) == ('mit-b0', layout)
    diffs = _max_diffs(_mit_b0_features(dst), ref)
    # HF's LayerNorms use eps 1e-5, the release (and mmseg) 1e-6: max diff measured
    # 2.6e-5 on features up to ~6 (3.6e-6 with mmseg's eps set to 1e-5)
    assert max(diffs) < ATOL, diffs


def test_mit_b2_key_sets(tmp_path):
    """b2 (the config's backbone): official and HF layouts strict-load into mmseg."""
    out, info = W.convert_state_dict('mit', _random_tensors(official_mit_keys('b2')), 'b2')
    assert info['variant'] == 'mit-b2' and info['filled'] == []
    assert info['backbone']['num_layers'] == [3, 4, 6, 3]
    assert len(out) == len(W.build_backbone(W.mit_backbone_cfg('b2')).state_dict())

    hf = transformers.SegformerForImageClassification(transformers.SegformerConfig(
        hidden_sizes=[64, 128, 320, 512], depths=[3, 4, 6, 3], num_labels=1000))
    out_hf, info = W.convert_state_dict('mit', _hub(hf, tmp_path / 'b2'))  # arch from weights
    assert info['variant'] == 'mit-b2'
    assert _shapes(out_hf) == _shapes(out)


def test_refusals_write_nothing(tmp_path):
    """Wrong --arch, incomplete weights, an existing DST: refused, nothing written."""
    src, dst = tmp_path / 'mit_b0.pth', tmp_path / 'out.pth'
    sd = _random_tensors(official_mit_keys('b0'))
    torch.save(sd, src)
    with pytest.raises(SegkitError, match=r'--arch b2 does not match.*mit-b0.*--arch b0'):
        W.convert_file('mit', src, dst, arch='b2', console=_quiet())
    del sd['block2.0.attn.sr.weight']
    torch.save(sd, src)
    with pytest.raises(SegkitError, match=r'would not load.*1 missing \(e\.g\. '
                       r'layers\.1\.1\.0\.attn\.sr\.weight\)'):
        W.convert_file('mit', src, dst, console=_quiet())
    assert list(tmp_path.iterdir()) == [src]  # no DST, no temp file left either
    torch.save(_random_tensors(official_mit_keys('b0')), src)
    dst.write_bytes(b'keep me')
    with pytest.raises(SegkitError, match='already exists; pass --force'):
        W.convert_file('mit', src, dst, console=_quiet())
    assert dst.read_bytes() == b'keep me'
    W.convert_file('mit', src, dst, force=True, console=_quiet())
    assert 'state_dict' in torch.load(dst, weights_only=True)


# ---------------------------------------------------------------------------- Swin

# Swin-T's structure (window 7, depths 2-2-6-2) at a quarter of its width, so the
# forward pass is cheap (the converter targets Swin-T; here its backbone config is
# given to W.verify). Input 448: every stage (112..14) is a multiple of the window
# (no padding) and larger than it. At 224 the last stage is exactly one 7x7 window:
# HF and the release then turn the shift off, mmseg keeps shifting (with its mask),
# so the last stage legitimately differs there (~1e-3).
SWIN_SMALL = dict(embed=24, depths=(2, 2, 6, 2), heads=(1, 2, 3, 6), window=7)
SWIN_SMALL_CFG = dict(W.SWIN_T, embed_dims=24, num_heads=[1, 2, 3, 6])
SWIN_INPUT = torch.randn(1, 3, 448, 448, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope='module')
def hf_swin_small(tmp_path_factory):
    cfg = transformers.SwinConfig(embed_dim=SWIN_SMALL['embed'],
                                  depths=list(SWIN_SMALL['depths']),
                                  num_heads=list(SWIN_SMALL['heads']),
                                  window_size=SWIN_SMALL['window'], num_labels=10)
    model = transformers.SwinForImageClassification(cfg)
    _randomize(model)
    model.eval()
    with torch.no_grad():
        emb, dims = model.swin.embeddings(SWIN_INPUT)
        enc = model.swin.encoder(emb, dims, output_hidden_states=True,
                                 output_hidden_states_before_downsampling=True)
    stages = enc.reshaped_hidden_states[1:]  # [0] is the embedding output
    # mmseg normalises each output stage: its norm0-2 are new (ones/zeros), norm3
    # is the release's / HF's final layernorm.
    final = model.swin.layernorm
    ref = []
    for i, s in enumerate(stages):
        c = s.shape[1]
        w, b = ((final.weight, final.bias) if i == len(stages) - 1
                else (torch.ones(c), torch.zeros(c)))
        ref.append(F.layer_norm(s.permute(0, 2, 3, 1), (c,), w, b, 1e-5)
                   .permute(0, 3, 1, 2).detach())
    folder = tmp_path_factory.mktemp('hub') / 'swin'
    return folder, _hub(model, folder), ref  # microsoft/swin-* holds the hub names


@pytest.mark.parametrize('fmt', ['hub_folder_safetensors', 'official_pth'])
def test_swin_features_match(hf_swin_small, tmp_path, fmt):
    folder, hub, ref = hf_swin_small
    if fmt == 'hub_folder_safetensors':
        src, layout = folder, 'hf'
    else:  # the release: {'model': ...} with its attn_mask / index buffers and head
        official = W.hf_swin_to_official(hub)
        arch = dict(embed=SWIN_SMALL['embed'], depths=SWIN_SMALL['depths'],
                    heads=SWIN_SMALL['heads'], window=SWIN_SMALL['window'])
        full = official_swin_keys(**arch)
        assert _shapes(official) == {k: s for k, s in official_swin_keys(**arch, buffers=False)
                                     .items() if not k.startswith('head.')}
        official.update(_random_tensors({k: s for k, s in full.items() if k not in official},
                                        seed=7))
        src, layout = tmp_path / 'swin_official.pth', 'official'
        torch.save({'model': official}, src)
    sd = W.load_state_dict(src)[1]
    assert W.detect_format(sd) == ('swin', layout)
    out, filled = W.verify('swin', W.convert_swin(sd), SWIN_SMALL_CFG)
    # 12 relative_position_index buffers + norm0-2 weight/bias come from mmseg's init
    assert len(filled) == 12 + 6
    torch.save({'state_dict': out}, tmp_path / 'out.pth')
    mm = _load_pretrained(SWIN_SMALL_CFG, tmp_path / 'out.pth')
    with torch.no_grad():
        diffs = _max_diffs(mm(SWIN_INPUT), ref)
    assert max(diffs) < ATOL, diffs


def test_swin_t_official_key_set():
    """Swin-T as the release ships it -> exactly mask2former_swin-t's backbone."""
    sd = _random_tensors(official_swin_keys())
    out, info = W.convert_state_dict('swin', W.unwrap({'model': sd}))
    assert info['variant'] == 'swin-t'
    cfg = info['backbone']
    assert (cfg['embed_dims'], cfg['depths'], cfg['num_heads'], cfg['window_size']) == (
        96, [2, 2, 6, 2], [3, 6, 12, 24], 7)
    assert torch.equal(out['norm3.weight'], sd['norm.weight'])  # final norm kept
    assert torch.equal(out['norm0.weight'], torch.ones(96))     # new output norm
    # PatchMerging: the release's (0,0),(1,0),(0,1),(1,1) neighbour blocks of 96
    # channels -> mmseg's nn.Unfold order, channel-major then (0,0),(0,1),(1,0),(1,1)
    w = sd['layers.0.downsample.reduction.weight']
    blocks = w.reshape(192, 4, 96)[:, [0, 2, 1, 3], :]
    assert torch.equal(out['stages.0.downsample.reduction.weight'],
                       blocks.transpose(1, 2).reshape(192, 384))
    with pytest.raises(SegkitError, match='--arch applies to mit only'):
        W.convert_state_dict('swin', sd, arch='b2')
    # a Swin that is not Swin-T (here Swin-S: depths 2-2-18-2) is refused by name
    with pytest.raises(SegkitError, match=r'would not load into mmseg SwinTransformer.*'
                       r'unexpected.*SRC should be swin-t'):
        W.convert_state_dict('swin', _random_tensors(official_swin_keys(depths=(2, 2, 18, 2))))


# --------------------------------------------------------------------- MobileNetV3

def _tv_keys() -> dict:
    with open(TV_KEYS) as f:
        return {k: tuple(s) for k, s in json.load(f)['keys']}


def test_mobilenetv3_torchvision_key_set(tmp_path):
    keys = _tv_keys()
    assert len(keys) == 360 and 'aux_classifier.4.weight' in keys
    sd = _random_tensors(keys)
    src = tmp_path / 'deeplabv3_mobilenet_v3_large-fc3c493d.pth'
    torch.save(sd, src)
    dst = W.convert_file('mobilenetv3', src, tmp_path / 'mbv3.pth', console=_quiet())
    out = torch.load(dst, weights_only=True)
    assert out['meta']['variant'] == 'mobilenet_v3_large'
    assert out['meta']['filled_from_init'] == []  # the file has num_batches_tracked
    mm = W.build_backbone(out['meta']['backbone'])
    mm.load_state_dict(out['state_dict'], strict=True)
    n_backbone = sum(1 for k in keys if k.startswith('backbone.'))
    assert len(out['state_dict']) == n_backbone  # classifier + aux_classifier dropped
    st = out['state_dict']
    # block 4: expand (0), depthwise (1), SE (2), project (3); block 1: no expand
    assert torch.equal(st['layer4.se.conv1.conv.weight'], sd['backbone.4.block.2.fc1.weight'])
    assert torch.equal(st['layer4.linear_conv.bn.running_var'],
                       sd['backbone.4.block.3.1.running_var'])
    assert torch.equal(st['layer1.depthwise_conv.conv.weight'],
                       sd['backbone.1.block.0.0.weight'])
    assert torch.equal(st['layer16.conv.weight'], sd['backbone.16.0.weight'])


@pytest.fixture
def torchvision_models():
    """torchvision.models where it imports. PyPI's torchvision is a CUDA build
    that fails to import against CPU torch (``operator torchvision::nms does not
    exist``), hence a skip on any import error, not only ImportError.
    SEGKIT_TORCHVISION_PYSRC=<dir holding an unzipped torchvision/> imports the
    pure-Python model definitions without torchvision's C-extension __init__."""
    src = os.environ.get('SEGKIT_TORCHVISION_PYSRC')
    if src:
        stub = types.ModuleType('torchvision')
        stub.__path__ = [os.path.join(src, 'torchvision')]
        sys.modules['torchvision'] = stub
    try:
        import torchvision.models as tvm
        import torchvision.models.segmentation as tvseg
    except Exception as err:  # noqa: BLE001 - any import failure means: no torchvision here
        for name in [n for n in sys.modules if n.split('.')[0] == 'torchvision']:
            del sys.modules[name]
        pytest.skip(f'torchvision does not import here ({type(err).__name__}); the CPU '
                    'torch build has no matching torchvision wheel')
    yield tvm, tvseg
    if src:
        for name in [n for n in sys.modules if n.split('.')[0] == 'torchvision']:
            del sys.modules[name]


def test_mobilenetv3_matches_torchvision(torchvision_models):
    """The converted DeepLabV3 backbone in segkit's MobileNetV3OS32 (torchvision's
    geometry, what the Mask2Former config uses) vs torchvision's mobilenet_v3_large
    features with the same weights, layer by layer."""
    import segkit.plugins.models  # noqa: F401 - MobileNetV3OS32
    tvm, tvseg = torchvision_models
    deeplab = tvseg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                 num_classes=21, aux_loss=True)
    sd = _random_tensors(_shapes(deeplab.state_dict()), seed=3)
    assert _shapes(sd) == _tv_keys()  # the fixture is torchvision's layout
    out, info = W.convert_state_dict('mobilenetv3', sd)
    mm = W.build_backbone(dict(info['backbone'], type='MobileNetV3OS32',
                               out_indices=tuple(range(17))))
    mm.load_state_dict(out, strict=True)
    mm.eval()
    plain = tvm.mobilenet_v3_large()
    plain.features.load_state_dict({k[len('backbone.'):]: v for k, v in sd.items()
                                    if k.startswith('backbone.')})
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(4))
    ref, h = [], x
    with torch.no_grad():
        for layer in plain.features:
            h = layer.eval()(h)
            ref.append(h)
        diffs = _max_diffs(mm(x), ref)
    # BN running stats are random, so magnitudes grow with depth: relative check
    rel = [d / r.abs().max().item() for d, r in zip(diffs, ref)]
    assert max(rel) < 1e-5, diffs


# ------------------------------------------------------------------ errors, files, CLI

def test_detect_format_and_unknown_layout(tmp_path):
    assert W.detect_format(official_mit_keys('b0')) == ('mit', 'official')
    assert W.detect_format(official_swin_keys()) == ('swin', 'official')
    assert W.detect_format(_tv_keys()) == ('mobilenetv3', 'torchvision')
    assert W.detect_format({'backbone.layers.0.0.projection.weight': 0}) == ('mit', 'mmseg')
    src = tmp_path / 'resnet.pth'
    torch.save({'conv1.weight': torch.zeros(1), 'fc.weight': torch.zeros(1)}, src)
    with pytest.raises(SegkitError, match='unrecognised key layout'):
        W.convert_file('mit', src, tmp_path / 'out.pth')
    torch.save(_random_tensors(official_swin_keys(depths=(1, 1, 1, 1), embed=8,
                                                  heads=(1, 1, 1, 1))), src)
    with pytest.raises(SegkitError, match=r'these are swin weights.*convert_weights\.py swin'):
        W.convert_file('mit', src, tmp_path / 'out.pth')
    # segkit's own output, converted again: the configs can use it as it is
    mmseg = tmp_path / 'mmseg.pth'
    torch.save({'state_dict': {'layers.0.0.projection.weight': torch.zeros(1)}}, mmseg)
    with pytest.raises(SegkitError, match='already use mmseg key names'):
        W.convert_file('mit', mmseg, tmp_path / 'out.pth')


def test_source_errors(tmp_path):
    with pytest.raises(SegkitError, match='does not exist'):
        W.convert_file('mit', tmp_path / 'nope.pth')
    (tmp_path / 'weights.txt').write_text('hello')
    with pytest.raises(SegkitError, match='unknown weight format'):
        W.convert_file('mit', tmp_path / 'weights.txt')
    (tmp_path / 'broken.safetensors').write_bytes(b'\x00' * 10)
    with pytest.raises(SegkitError, match='not a readable safetensors'):
        W.convert_file('mit', tmp_path / 'broken.safetensors')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SegkitError, match='holds no weight file'):
        W.convert_file('mit', tmp_path / 'empty')


def test_default_dst_names():
    assert str(W.default_dst('mit', 'b2')) == os.path.join('checkpoints', 'mit_b2_mmseg.pth')
    assert W.default_dst('mit', 'b4').name == 'mit_b4_mmseg.pth'
    assert W.default_dst('mobilenetv3').name == 'mobilenet_v3_large_deeplabv3_mmseg.pth'
    from segkit.facts import SOURCES
    for name in (W.default_dst('mit', 'b2').name, W.default_dst('mit', 'b4').name,
                 W.default_dst('swin').name, W.default_dst('mobilenetv3').name):
        assert name in SOURCES


def _run_cli(repo_root, monkeypatch, *argv) -> int:
    monkeypatch.setattr(sys, 'argv', ['convert_weights.py', *map(str, argv)])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(repo_root / 'tools' / 'convert_weights.py'), run_name='__main__')
    return exc.value.code


def test_cli(repo_root, tmp_path, monkeypatch, capsys):
    src = tmp_path / 'mit_b0.pth'
    torch.save(_random_tensors(official_mit_keys('b0')), src)
    monkeypatch.chdir(tmp_path)  # DST defaults to checkpoints/ under the cwd
    assert _run_cli(repo_root, monkeypatch, 'mit', src, '--arch', 'b0') == 0
    assert (tmp_path / 'checkpoints' / 'mit_b0_mmseg.pth').is_file()
    assert 'checkpoints/mit_b0_mmseg.pth' in capsys.readouterr().out
    assert _run_cli(repo_root, monkeypatch, 'mit', src, '--arch', 'b0') == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'already exists' in err and err.count('\n') == 1
