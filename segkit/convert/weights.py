"""Pretrained backbone weights -> mmseg key names (``tools/convert_weights.py``): Hugging Face
files are first renamed to the official release's layout, so one release -> mmseg rule list
serves both; the strict load into the mmseg backbone, before anything is written, checks it."""
from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Optional

import torch

from segkit.errors import SegkitError
from segkit.facts import CHECKPOINT_DIR, PRETRAINED
from segkit.io import atomic_write

KINDS = ('mit', 'swin', 'mobilenetv3')

# MiT variants (SegFormer paper, Table 6): stage-1 width, blocks per stage.
MIT_ARCHS = {'b0': (32, (2, 2, 2, 2)), 'b1': (64, (2, 2, 2, 2)), 'b2': (64, (3, 4, 6, 3)),
             'b3': (64, (3, 4, 18, 3)), 'b4': (64, (3, 8, 27, 3)), 'b5': (64, (3, 6, 40, 3))}
# the mmseg backbones the configs build (mask2former_swin-t, mask2former_mobilenetv3-l);
# MobileNetV3's BN eps is 1e-3 as torchvision trained it (mmseg's default 1e-5)
SWIN_T = dict(type='SwinTransformer', pretrain_img_size=224, embed_dims=96, patch_size=4,
              window_size=7, mlp_ratio=4, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
              strides=(4, 2, 2, 2), qkv_bias=True, patch_norm=True, out_indices=(0, 1, 2, 3))
MOBILENETV3_L = dict(type='MobileNetV3', arch='large', norm_cfg=dict(type='BN', eps=0.001),
                     out_indices=(3, 6, 12, 16))
_BACKBONES = {'swin': (SWIN_T, 'swin-t'), 'mobilenetv3': (MOBILENETV3_L, 'mobilenet_v3_large')}


def mit_backbone_cfg(arch: str) -> dict:
    """mmseg ``MixVisionTransformer`` for a variant (as mmseg's segformer configs)."""
    width, depths = MIT_ARCHS[arch]
    return dict(type='MixVisionTransformer', in_channels=3, embed_dims=width, num_stages=4,
                num_layers=list(depths), num_heads=[1, 2, 5, 8], patch_sizes=[7, 3, 3, 3],
                sr_ratios=[8, 4, 2, 1], out_indices=(0, 1, 2, 3), mlp_ratio=4, qkv_bias=True)


def load_state_dict(src) -> tuple[Path, dict]:
    """``(file, {name: tensor})`` from a .pth/.bin, .safetensors or Hugging Face folder."""
    path = Path(src)
    if path.is_dir():
        path = next((path / n for n in ('model.safetensors', 'pytorch_model.bin')
                     if (path / n).is_file()), None)
        if path is None:
            raise SegkitError(f'folder {src} holds no weight file (model.safetensors, '
                              'pytorch_model.bin); point SRC at the weight file itself')
    elif not path.is_file():
        raise SegkitError(f'{src} does not exist; download it first '
                          '(see checkpoints/README.md)')
    if path.suffix == '.safetensors':
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            obj = load_file(str(path), device='cpu')
        except (SafetensorError, OSError, ValueError) as err:
            first = (str(err).splitlines() or [type(err).__name__])[0]
            raise SegkitError(f'{path} is not a readable safetensors file ({first}); '
                              'download it again') from None
    elif path.suffix in ('.pth', '.bin', '.pt', '.ckpt'):
        from segkit.safe_load import safe_load
        try:
            obj = safe_load(path)
        except OSError as err:  # permissions, a vanished file: not a traceback
            raise SegkitError(f'cannot read {path}: {err.strerror or err}') from None
    else:
        raise SegkitError(f'unknown weight format {path.name!r}: expected .pth, .bin, '
                          '.pt or .safetensors (or a folder holding one)')
    return path, unwrap(obj, str(path))


def unwrap(obj, where: str = 'the checkpoint') -> dict:
    """The ``{name: tensor}`` in a checkpoint: bare, under ``'model'`` or ``'state_dict'``."""
    if isinstance(obj, Mapping):
        obj = next((obj[k] for k in ('state_dict', 'model') if isinstance(obj.get(k), Mapping)),
                   obj)
    sd = (OrderedDict((k, v) for k, v in obj.items() if isinstance(v, torch.Tensor))
          if isinstance(obj, Mapping) else None)
    if not sd:
        raise SegkitError(f'{where} holds no state dict of tensors; is it a weight file?')
    return sd


# (kind, layout, a key pattern only that layout has)
_LAYOUTS = (
    ('mit', 'hf', r'(segformer\.)?encoder\.patch_embeddings\.\d+\.'),
    ('mit', 'official', r'(patch_embed\d+\.proj|block\d+\.\d+\.attn\.q)\.'),
    ('mit', 'mmseg', r'(backbone\.)?layers\.\d+\.0\.projection\.'),
    ('swin', 'hf', r'(swin\.)?embeddings\.patch_embeddings\.projection\.'),
    ('swin', 'official', r'layers\.\d+\.blocks\.\d+\.attn\.qkv\.'),
    ('swin', 'mmseg', r'(backbone\.)?stages\.\d+\.blocks\.\d+\.attn\.w_msa\.'),
    ('mobilenetv3', 'torchvision', r'backbone\.\d+\.block\.\d+\.\d+\.weight$'),
    ('mobilenetv3', 'mmseg', r'(backbone\.)?layer\d+\.(depthwise_conv|linear_conv)\.'),
)


def detect_format(state_dict: Mapping) -> tuple[str, str]:
    """``(kind, layout)``: kind in KINDS, layout official / hf / torchvision / mmseg."""
    for kind, layout, pattern in _LAYOUTS:
        if any(re.match(pattern, k) for k in state_dict):
            return kind, layout
    raise SegkitError(f'unrecognised key layout ({len(state_dict)} tensors, first: '
                      f'{", ".join(list(state_dict)[:3])}); expected SegFormer/MiT, Swin or '
                      'torchvision MobileNetV3 weights (official release or Hugging Face)')


def _rename(state_dict: Mapping, rules: list, fuse: tuple = ()) -> OrderedDict:
    """Every ``(pattern, replacement)`` of ``rules`` applied to each key in turn (a
    replacement of None drops the key); then ``fuse = (parts, into)`` concatenates
    the rows of ``X.part.P`` over ``parts`` into ``X.{into}`` (formatted with P)."""
    out = OrderedDict()
    for k, v in state_dict.items():
        for pattern, repl in rules:
            if repl is None and re.search(pattern, k):
                break
            k = re.sub(pattern, repl, k) if repl is not None else k
        else:
            out[k] = v
    if not fuse:
        return out
    parts, into = fuse
    rx = re.compile(rf'^(.*)\.({"|".join(map(re.escape, parts))})\.(weight|bias)$')
    fused = OrderedDict()
    for k, v in out.items():
        m = rx.match(k)
        if not m:
            fused[k] = v
        elif m[2] == parts[0]:
            try:
                fused[f'{m[1]}.{into.format(m[3])}'] = torch.cat(
                    [out[f'{m[1]}.{p}.{m[3]}'] for p in parts], dim=0)
            except KeyError as err:
                raise SegkitError(f'{k} has no matching {err.args[0]}; the weights are '
                                  'incomplete') from None
    return fused


def _stage(offset: int, template: str):
    """A replacement renumbering the stage index of group 1 by ``offset``."""
    return lambda m: template.format(int(m[1]) + offset, *m.groups()[1:])


_HF_MIT = [  # hub names -> the SegFormer release's
    (r'^segformer\.', ''), (r'^(classifier|decode_head)\.', None),
    (r'^encoder\.patch_embeddings\.(\d)\.layer_norm\.', _stage(1, 'patch_embed{}.norm.')),
    (r'^encoder\.patch_embeddings\.(\d)\.', _stage(1, 'patch_embed{}.')),
    (r'^encoder\.layer_norm\.(\d)\.', _stage(1, 'norm{}.')),
    (r'^encoder\.block\.(\d)\.', _stage(1, 'block{}.')),
    (r'\.attention\.self\.(query|key|value)\.', lambda m: f'.attn.{m[1][0]}.'),
    (r'\.attention\.self\.layer_norm\.', '.attn.norm.'), (r'\.attention\.self\.', '.attn.'),
    (r'\.attention\.output\.dense\.', '.attn.proj.'), (r'\.layer_norm_([12])\.', r'.norm\1.'),
    (r'\.mlp\.dense([12])\.', r'.mlp.fc\1.'),
]
_MIT = [  # the release -> mmseg MixVisionTransformer (as mmseg's mit2mmseg.py)
    (r'^head\.', None),
    (r'^patch_embed(\d)\.proj\.', _stage(-1, 'layers.{}.0.projection.')),
    (r'^patch_embed(\d)\.norm\.', _stage(-1, 'layers.{}.0.norm.')),
    (r'^norm(\d)\.', _stage(-1, 'layers.{}.2.')),
    (r'^block(\d)\.', _stage(-1, 'layers.{}.1.')),
    (r'\.attn\.(q|kv|proj)\.', r'.attn.attn.\1.'),
    (r'\.attn\.attn\.proj\.', '.attn.attn.out_proj.'),
    (r'\.mlp\.fc1\.', '.ffn.layers.0.'), (r'\.mlp\.dwconv\.dwconv\.', '.ffn.layers.1.'),
    (r'\.mlp\.fc2\.', '.ffn.layers.4.'),
]
_HF_SWIN = [  # hub names -> the Swin release's
    (r'^swin\.', ''), (r'^(classifier|pooler)\.', None),
    (r'^embeddings\.patch_embeddings\.projection\.', 'patch_embed.proj.'),
    (r'^embeddings\.norm\.', 'patch_embed.norm.'), (r'^encoder\.layers\.', 'layers.'),
    (r'^layernorm\.', 'norm.'),
    (r'\.attention\.self\.(query|key|value)\.', lambda m: f'.attn.{m[1][0]}.'),
    (r'\.attention\.self\.', '.attn.'), (r'\.attention\.output\.dense\.', '.attn.proj.'),
    (r'\.layernorm_before\.', '.norm1.'), (r'\.layernorm_after\.', '.norm2.'),
    (r'\.intermediate\.dense\.', '.mlp.fc1.'), (r'\.output\.dense\.', '.mlp.fc2.'),
]
_SWIN = [  # the release -> mmseg SwinTransformer (as mmseg's swin2mmseg.py, but: the
    # attn_mask / index buffers are dropped, mmseg computes its own; the final norm
    # becomes norm3, mmseg's output norm of the last stage, which sees those features)
    (r'^head\.|\.attn_mask$|\.relative_position_index$', None),
    (r'^layers\.', 'stages.'), (r'\.attn\.', '.attn.w_msa.'),
    (r'\.mlp\.fc1\.', '.ffn.layers.0.0.'), (r'\.mlp\.fc2\.', '.ffn.layers.1.'),
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'), (r'^norm\.', 'norm3.'),
]
# torchvision's MobileNetV3-Large ``backbone.<i>``: i = 0 stem, 16 last 1x1 conv; blocks
# 1-15 are [expand (not 1), depthwise, squeeze-excite (4-6, 11-15), project]
_MBV3_SE = (4, 5, 6, 11, 12, 13, 14, 15)


def _mbv3_block(m) -> str:
    i = int(m[1])
    roles = (['expand_conv'] if i != 1 else []) + ['depthwise_conv'] + (
        ['se'] if i in _MBV3_SE else []) + ['linear_conv']
    j = int(m[2])
    return f'layer{i}.{roles[j] if j < len(roles) else f"block.{j}"}.'


_MOBILENETV3 = [
    (r'^(classifier|aux_classifier)\.', None),
    (r'^backbone\.(\d+)\.block\.(\d+)\.', _mbv3_block), (r'^backbone\.(\d+)\.', r'layer\1.'),
    (r'\.se\.fc([12])\.', r'.se.conv\1.conv.'),
    (r'\.0\.(\w+)$', r'.conv.\1'), (r'\.1\.(\w+)$', r'.bn.\1'),  # Conv2dNormActivation
]


def _unfold_order(w: torch.Tensor) -> torch.Tensor:
    """PatchMerging's input channels: the release's 2x2 neighbour order -> mmseg's channel-major
    nn.Unfold order (the permutation of mmseg's swin2mmseg.py)."""
    head, c = w.shape[:-1], w.shape[-1] // 4
    return w.reshape(*head, 4, c)[..., [0, 2, 1, 3], :].transpose(-1, -2).reshape(w.shape)


# kind -> ((rules, fuse) Hugging Face -> release, (rules, fuse) release -> mmseg,
#          (key pattern, tensor rewrite) after renaming)
_MAPPINGS = {
    # q and kv fuse into nn.MultiheadAttention's in_proj; the Mix-FFN Linears become 1x1 convs
    'mit': ((_HF_MIT, (('attn.k', 'attn.v'), 'attn.kv.{}')),
            (_MIT, (('attn.attn.q', 'attn.attn.kv'), 'attn.attn.in_proj_{}')),
            (r'\.ffn\.layers\.[04]\.weight$', lambda v: v.reshape(*v.shape, 1, 1))),
    'swin': ((_HF_SWIN, (('attn.q', 'attn.k', 'attn.v'), 'attn.qkv.{}')), (_SWIN, ()),
             (r'\.downsample\.', _unfold_order)),
    'mobilenetv3': (None, (_MOBILENETV3, ()), (None, None)),
}


def hf_mit_to_official(state_dict: Mapping) -> OrderedDict:
    """Hugging Face Segformer keys -> the SegFormer release's (key+value fuse into kv)."""
    return _rename(state_dict, *_MAPPINGS['mit'][0])


def hf_swin_to_official(state_dict: Mapping) -> OrderedDict:
    """Hugging Face Swin keys -> the Swin release's (query/key/value fuse into qkv)."""
    return _rename(state_dict, *_MAPPINGS['swin'][0])


def _to_mmseg(kind: str, state_dict: Mapping) -> tuple[OrderedDict, str]:
    """``(weights under mmseg key names, the source's layout)``."""
    found, layout = detect_format(state_dict)
    if found != kind:
        raise SegkitError(f'these are {found} weights ({layout} layout), not {kind}; '
                          f'run: python tools/convert_weights.py {found} SRC')
    if layout == 'mmseg':
        raise SegkitError(f'these {kind} weights already use mmseg key names; point '
                          "the config's init_cfg checkpoint at the file directly")
    to_release, to_mmseg, (pattern, rewrite) = _MAPPINGS[kind]
    if layout == 'hf':
        state_dict = _rename(state_dict, *to_release)
    out = _rename(state_dict, *to_mmseg)
    for k, v in out.items():
        if pattern and re.search(pattern, k):
            out[k] = rewrite(v)
    return out, layout


def convert_swin(state_dict: Mapping) -> OrderedDict:
    """Swin weights (release or Hugging Face) -> mmseg ``SwinTransformer`` keys."""
    return _to_mmseg('swin', state_dict)[0]


def convert_mobilenetv3(state_dict: Mapping) -> OrderedDict:
    """torchvision's DeepLabV3 MobileNetV3-Large ``backbone`` -> mmseg ``MobileNetV3``."""
    return _to_mmseg('mobilenetv3', state_dict)[0]


def infer_mit_arch(mmseg_state_dict: Mapping) -> str:
    """``'b0'``..``'b5'`` from mmseg-layout MiT weights (stage-1 width, depths)."""
    if 'layers.0.0.projection.weight' not in mmseg_state_dict:
        raise SegkitError('these MiT weights have no patch_embed1.proj.weight; the file '
                          'is incomplete')
    width = mmseg_state_dict['layers.0.0.projection.weight'].shape[0]
    depths = tuple(1 + max((int(m[1]) for k in mmseg_state_dict
                            if (m := re.match(rf'layers\.{i}\.1\.(\d+)\.', k))), default=-1)
                   for i in range(4))
    for arch, spec in MIT_ARCHS.items():
        if spec == (width, depths):
            return arch
    raise SegkitError(f'unrecognised MiT variant (stage-1 width {width}, blocks per '
                      f'stage {list(depths)}); supported: mit-b0..b5')


# Keys the mmseg Swin has that no pretrained file carries, filled from the freshly
# built backbone: its window-derived index buffers and the output norms of stages 0-2.
_FILLABLE = {'swin': r'.*\.relative_position_index$|norm[012]\.(weight|bias)$'}


def build_backbone(cfg: dict) -> torch.nn.Module:
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    return MODELS.build(dict(cfg))


def verify(kind: str, state_dict: Mapping, cfg: dict,
           hint: str = 'check SRC is the right model') -> tuple[OrderedDict, list]:
    """``(state_dict in the backbone's order, keys filled from init)`` once it strict-loads."""
    model = build_backbone(cfg)
    target = model.state_dict()
    fill = _FILLABLE.get(kind)
    filled = [k for k in target if k not in state_dict and fill and re.match(fill, k)]
    problems = {
        'missing': [k for k in target if k not in state_dict and k not in filled],
        'unexpected': [k for k in state_dict if k not in target],
        'shape mismatch': [f'{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}'
                           for k, v in target.items()
                           if k in state_dict and state_dict[k].shape != v.shape]}
    if any(problems.values()):
        parts = [f'{len(v)} {label} (e.g. {v[0]})' for label, v in problems.items() if v]
        raise SegkitError(f'converted {kind} weights would not load into mmseg '
                          f'{cfg["type"]}: {"; ".join(parts)}; {hint}')
    out = OrderedDict((k, v.detach().clone() if k in filled
                      else state_dict[k].detach().contiguous())
                      for k, v in target.items())
    model.load_state_dict(out, strict=True)  # the real check
    return out, filled


def default_dst(kind: str, arch: Optional[str] = None) -> Path:
    """The file the configs expect (segkit/facts.py), mit-b* named like b2/b4."""
    if kind == 'mit':
        return CHECKPOINT_DIR / PRETRAINED.get(f'mit-{arch}', f'mit_{arch}_mmseg.pth')
    return CHECKPOINT_DIR / PRETRAINED[kind]


def convert_state_dict(kind: str, state_dict: Mapping, arch: Optional[str] = None):
    """Convert and verify in memory: ``(mmseg state dict, info dict)``."""
    if kind not in KINDS:
        raise SegkitError(f'unknown kind {kind!r}; use one of {", ".join(KINDS)}')
    if arch is not None and kind != 'mit':
        raise SegkitError(f'--arch applies to mit only; {kind} converts '
                          f'{_BACKBONES[kind][1]} weights')
    converted, layout = _to_mmseg(kind, state_dict)
    if kind == 'mit':
        found = infer_mit_arch(converted)
        if arch is not None and arch != found:
            width, depths = MIT_ARCHS[found]
            raise SegkitError(f'--arch {arch} does not match the weights: they are mit-{found} '
                              f'(stage-1 width {width}, blocks per stage {list(depths)}); '
                              f'rerun with --arch {found} or without --arch')
        arch, cfg, variant = found, mit_backbone_cfg(found), f'mit-{found}'
    else:
        cfg, variant = _BACKBONES[kind]
    out, filled = verify(kind, converted, cfg, f'SRC should be {variant}; it is incomplete or '
                         'another model: download it again')
    return out, dict(kind=kind, layout=layout, variant=variant, backbone=cfg, arch=arch,
                     source_tensors=len(state_dict), filled=filled)


def convert_file(kind: str, src, dst=None, arch: Optional[str] = None,
                 force: bool = False, console=None) -> Path:
    """Convert ``src`` and write ``{'state_dict', 'meta'}`` to ``dst`` (default: the configs')."""
    if arch is not None and arch not in MIT_ARCHS:
        raise SegkitError(f'unknown --arch {arch!r}; use one of {", ".join(MIT_ARCHS)}')
    src_path, state_dict = load_state_dict(src)
    if dst is not None:
        _refuse_existing(Path(dst), force)  # before the slow part
    out, info = convert_state_dict(kind, state_dict, arch)
    dst = Path(dst or default_dst(kind, info['arch']))
    _refuse_existing(dst, force)
    if dst.resolve() == src_path.resolve():
        raise SegkitError(f'DST {dst} is the source file; write somewhere else')
    meta = dict(converter=__name__, kind=kind, variant=info['variant'], source=str(src_path),
                source_layout=info['layout'], backbone=info['backbone'], tensors=len(out),
                filled_from_init=info['filled'])
    atomic_write(str(dst), lambda tmp: torch.save({'state_dict': out, 'meta': meta}, tmp),
                 durable=True)
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f'{kind} weights -> mmseg {info["backbone"]["type"]}', show_header=False)
    n_values = sum(v.numel() for v in out.values() if v.is_floating_point())
    rows = [('source', f'{src_path} ({info["layout"]} layout, {len(state_dict)} tensors)'),
            ('variant', info['variant']),
            ('converted', f'{len(out)} tensors, {n_values / 1e6:.1f}M values (heads dropped)'),
            ('from init', info['filled'] and f'{len(info["filled"])} tensors mmseg adds '
                                             '(buffers, norms)'),
            ('check', 'strict load into the mmseg backbone: ok'), ('written', str(dst))]
    for row in rows:
        if row[1]:
            table.add_row(*row)
    (console or Console()).print(table)
    return dst


def _refuse_existing(dst: Path, force: bool) -> None:
    if dst.exists() and not force:
        raise SegkitError(f'{dst} already exists; pass --force to overwrite it')
    if dst.is_dir():
        raise SegkitError(f'DST {dst} is a folder; give a file name ending in .pth')
