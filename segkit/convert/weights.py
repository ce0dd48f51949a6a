"""Pretrained backbone weights -> mmseg key names, checked against the mmseg backbone.

    python tools/convert_weights.py {mit,swin,mobilenetv3} SRC [DST] [--arch b2] [--force]

Sources and the layouts they use:

* ``mit``: the SegFormer release (``mit_b2.pth``: ``patch_embed1.proj``,
  ``block1.0.attn.q``/``attn.kv``, ``norm1``) or Hugging Face ``nvidia/mit-b2``
  (``segformer.encoder.block.0.0.attention.self.query``; transformers >= 5 names
  the same modules ``stages.0.blocks.0.attention.q_proj`` in memory).
* ``swin``: the Swin release (``{'model': {'layers.0.blocks.0.attn.qkv...'}}``) or
  Hugging Face ``microsoft/swin-tiny-patch4-window7-224`` (separate
  query/key/value; transformers >= 5 in memory: ``q_proj``/``k_proj``/``v_proj``).
* ``mobilenetv3``: torchvision's ``deeplabv3_mobilenet_v3_large`` checkpoint
  (``backbone.<i>...``) or its ImageNet ``mobilenet_v3_large`` (``features.<i>...``).

Hugging Face layouts are first renamed to the official layout (a pure rename plus
the q/k/v fusing), so one official -> mmseg mapping serves both; the tests check
the whole chain numerically against transformers' own models.

Every converted dict is loaded into the mmseg backbone built from the mmseg
registry with ``strict=True`` before anything is written; a file that would not
load is refused with a :class:`SegkitError`.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Optional

import torch

from segkit.errors import SegkitError
from segkit.facts import CHECKPOINT_DIR, PRETRAINED
from segkit.io import atomic_write

KINDS = ('mit', 'swin', 'mobilenetv3')
CONVERTER = 'segkit.convert.weights'

# MiT variants (SegFormer paper, Table 6): stage-1 width, blocks per stage.
# Stage widths are embed_dims * num_heads = (1, 2, 5, 8) x width.
MIT_ARCHS = {
    'b0': (32, (2, 2, 2, 2)),
    'b1': (64, (2, 2, 2, 2)),
    'b2': (64, (3, 4, 6, 3)),
    'b3': (64, (3, 4, 18, 3)),
    'b4': (64, (3, 8, 27, 3)),
    'b5': (64, (3, 6, 40, 3)),
}
SWIN_T = dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7)



# --------------------------------------------------------------------------- loading

_FOLDER_PREFERENCE = ('model.safetensors', 'pytorch_model.bin')
_EXTENSIONS = ('.safetensors', '.pth', '.bin', '.pt', '.ckpt')


def resolve_source(src) -> Path:
    """The weight file ``src`` names: the file itself, or the one inside a folder."""
    path = Path(src)
    if not path.exists():
        raise SegkitError(f'{src} does not exist; download it first '
                          '(see checkpoints/README.md)')
    if path.is_file():
        return path
    for name in _FOLDER_PREFERENCE:  # a Hugging Face snapshot folder
        if (path / name).is_file():
            return path / name
    found = sorted(p for p in path.iterdir()
                   if p.is_file() and p.name.endswith(_EXTENSIONS))
    if len(found) == 1:
        return found[0]
    if not found:
        raise SegkitError(f'folder {src} holds no weight file (.safetensors, .pth, '
                          '.bin); point SRC at the weight file itself')
    names = ', '.join(p.name for p in found[:4])
    raise SegkitError(f'folder {src} holds several weight files ({names}); '
                      'point SRC at the one to convert')


def load_state_dict(src) -> tuple[Path, dict]:
    """Load a ``.pth``/``.bin`` (``weights_only``) or ``.safetensors`` file, unwrapped.

    Unwraps ``{'state_dict': ...}`` / ``{'model': ...}`` and a ``module.`` prefix
    (DDP saves); keeps only tensors.
    """
    path = resolve_source(src)
    if path.name.endswith('.safetensors'):
        try:
            from safetensors import SafetensorError
            from safetensors.torch import load_file
        except ImportError:
            raise SegkitError(f'{path.name} is a safetensors file and the safetensors '
                              'package is missing: pip install safetensors') from None
        try:
            obj = load_file(str(path), device='cpu')
        except (SafetensorError, OSError, ValueError) as err:
            first = (str(err).splitlines() or [type(err).__name__])[0]
            raise SegkitError(f'{path} is not a readable safetensors file ({first}); '
                              'download it again') from None
    elif path.name.endswith(_EXTENSIONS):
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
    """The flat ``{name: tensor}`` inside a checkpoint object."""
    for _ in range(3):  # e.g. {'model': {'state_dict': ...}}
        if not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in ('state_dict', 'model', 'module')
                      if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise SegkitError(f'{where} holds a {type(obj).__name__}, not a state dict; '
                          'save the model\'s state_dict() instead')
    sd = OrderedDict((k, v) for k, v in obj.items() if isinstance(v, torch.Tensor))
    if not sd:
        raise SegkitError(f'{where} holds no tensors; is it a weight file?')
    if all(k.startswith('module.') for k in sd):
        sd = OrderedDict((k[len('module.'):], v) for k, v in sd.items())
    return sd


# -------------------------------------------------------------------- layout detection

# (kind, layout, a key pattern only that layout has)
_LAYOUTS = (
    ('mit', 'hf',
     r'(segformer\.)?(encoder\.patch_embeddings\.\d+|stages\.\d+\.patch_embeddings)\.'),
    ('mit', 'official', r'(patch_embed\d+\.proj|block\d+\.\d+\.attn\.q)\.'),
    ('mit', 'mmseg', r'(backbone\.)?layers\.\d+\.0\.projection\.'),
    ('swin', 'hf', r'(swin\.)?embeddings\.patch_embeddings\.projection\.'),
    ('swin', 'official', r'layers\.\d+\.blocks\.\d+\.attn\.qkv\.'),
    ('swin', 'mmseg', r'(backbone\.)?stages\.\d+\.blocks\.\d+\.attn\.w_msa\.'),
    ('mobilenetv3', 'torchvision', r'(backbone|features)\.\d+\.block\.\d+\.\d+\.weight$'),
    ('mobilenetv3', 'mmseg', r'(backbone\.)?layer\d+\.(depthwise_conv|linear_conv)\.'),
)


def detect_format(state_dict: Mapping) -> tuple[str, str]:
    """``(kind, layout)`` of a state dict: kind in KINDS, layout one of
    ``official``, ``hf``, ``torchvision``, ``mmseg``."""
    for kind, layout, pattern in _LAYOUTS:
        rx = re.compile(pattern)
        if any(rx.match(k) for k in state_dict):
            return kind, layout
    first = ', '.join(list(state_dict)[:3])
    raise SegkitError(f'unrecognised key layout ({len(state_dict)} tensors, first: '
                      f'{first}); expected SegFormer/MiT, Swin or torchvision '
                      'MobileNetV3 weights (official release or Hugging Face)')


def _expect_kind(state_dict: Mapping, kind: str) -> str:
    found, layout = detect_format(state_dict)
    if found != kind:
        raise SegkitError(f'these are {found} weights ({layout} layout), not {kind}; '
                          f'run: python tools/convert_weights.py {found} SRC')
    if layout == 'mmseg':
        raise SegkitError(f'these {kind} weights already use mmseg key names; point '
                          "the config's init_cfg checkpoint at the file directly")
    return layout


def _strip_prefix(sd: Mapping, prefix: str) -> OrderedDict:
    return OrderedDict((k[len(prefix):] if k.startswith(prefix) else k, v)
                       for k, v in sd.items())


# ---------------------------------------------------------------------------- MiT

# transformers >= 5 in-memory names -> the hub (save_pretrained) names.
_HF5_MIT = [
    (r'^stages\.(\d+)\.patch_embeddings\.', r'encoder.patch_embeddings.\1.'),
    (r'^stages\.(\d+)\.blocks\.', r'encoder.block.\1.'),
    (r'^stages\.(\d+)\.layer_norm\.', r'encoder.layer_norm.\1.'),
]
_HF5_MIT_BLOCK = [
    ('attention.q_proj.', 'attention.self.query.'),
    ('attention.k_proj.', 'attention.self.key.'),
    ('attention.v_proj.', 'attention.self.value.'),
    ('attention.sequence_reduction.sequence_reduction.', 'attention.self.sr.'),
    ('attention.sequence_reduction.layer_norm.', 'attention.self.layer_norm.'),
    ('attention.o_proj.', 'attention.output.dense.'),
    ('mlp.fc1.', 'mlp.dense1.'),
    ('mlp.fc2.', 'mlp.dense2.'),
    ('layernorm_before.', 'layer_norm_1.'),
    ('layernorm_after.', 'layer_norm_2.'),
]


def _hf5_to_hub_mit(key: str) -> str:
    for pattern, repl in _HF5_MIT:
        key = re.sub(pattern, repl, key)
    if key.startswith('encoder.block.'):
        for new, old in _HF5_MIT_BLOCK:
            key = key.replace('.' + new, '.' + old)
    return key


def hf_mit_to_official(state_dict: Mapping) -> OrderedDict:
    """Hugging Face Segformer encoder keys -> the SegFormer release's keys.

    Drops heads (``classifier``, ``decode_head``); fuses key+value into ``attn.kv``
    (rows: key then value, as the release's ``kv`` Linear splits them).
    """
    sd = _strip_prefix(state_dict, 'segformer.')
    sd = OrderedDict((_hf5_to_hub_mit(k), v) for k, v in sd.items()
                     if not k.startswith(('classifier.', 'decode_head.')))
    out = OrderedDict()
    for k, v in sd.items():
        m = re.match(r'^encoder\.patch_embeddings\.(\d+)\.(proj|layer_norm)\.(\w+)$', k)
        if m:
            sub = 'proj' if m.group(2) == 'proj' else 'norm'
            out[f'patch_embed{int(m.group(1)) + 1}.{sub}.{m.group(3)}'] = v
            continue
        m = re.match(r'^encoder\.layer_norm\.(\d+)\.(\w+)$', k)
        if m:
            out[f'norm{int(m.group(1)) + 1}.{m.group(2)}'] = v
            continue
        m = re.match(r'^encoder\.block\.(\d+)\.(\d+)\.(.+)$', k)
        if not m:
            raise SegkitError(f'unrecognised key {k!r} in these Hugging Face Segformer '
                              'weights; expected segformer.encoder.* keys')
        base = f'block{int(m.group(1)) + 1}.{m.group(2)}.'
        rest = m.group(3)
        if rest.startswith('attention.self.key.'):
            param = rest.rsplit('.', 1)[1]
            value = sd[k.replace('.attention.self.key.', '.attention.self.value.')]
            out[f'{base}attn.kv.{param}'] = torch.cat([v, value], dim=0)
            continue
        if rest.startswith('attention.self.value.'):
            continue  # fused with key above
        for old, new in (('attention.self.query.', 'attn.q.'),
                         ('attention.self.sr.', 'attn.sr.'),
                         ('attention.self.layer_norm.', 'attn.norm.'),
                         ('attention.output.dense.', 'attn.proj.'),
                         ('layer_norm_1.', 'norm1.'), ('layer_norm_2.', 'norm2.'),
                         ('mlp.dense1.', 'mlp.fc1.'), ('mlp.dense2.', 'mlp.fc2.'),
                         ('mlp.dwconv.dwconv.', 'mlp.dwconv.dwconv.')):
            if rest.startswith(old):
                out[base + new + rest[len(old):]] = v
                break
        else:
            raise SegkitError(f'unrecognised key {k!r} in these Hugging Face Segformer '
                              'weights')
    return out


def official_mit_to_mmseg(state_dict: Mapping) -> OrderedDict:
    """SegFormer release keys -> mmseg ``MixVisionTransformer`` keys.

    Same mapping as mmseg's tools/model_converters/mit2mmseg.py: q and kv fuse into
    ``nn.MultiheadAttention``'s ``in_proj`` (rows q, k, v); the Mix-FFN Linears
    become 1x1 convs.
    """
    out = OrderedDict()
    for k, v in state_dict.items():
        if k.startswith('head.'):
            continue  # ImageNet classifier
        m = re.match(r'^patch_embed(\d+)\.(proj|norm)\.(\w+)$', k)
        if m:
            sub = 'projection' if m.group(2) == 'proj' else 'norm'
            out[f'layers.{int(m.group(1)) - 1}.0.{sub}.{m.group(3)}'] = v
            continue
        m = re.match(r'^norm(\d+)\.(\w+)$', k)
        if m:
            out[f'layers.{int(m.group(1)) - 1}.2.{m.group(2)}'] = v
            continue
        m = re.match(r'^block(\d+)\.(\d+)\.(.+)$', k)
        if not m:
            raise SegkitError(f'unrecognised key {k!r} in these MiT weights; expected '
                              'the SegFormer release layout (patch_embed1, block1, norm1)')
        base = f'layers.{int(m.group(1)) - 1}.1.{m.group(2)}.'
        rest = m.group(3)
        param = rest.rsplit('.', 1)[-1]
        if rest.startswith('attn.q.'):
            kv = state_dict.get(k.replace('.attn.q.', '.attn.kv.'))
            if kv is None:
                raise SegkitError(f'{k} has no matching attn.kv.{param}; the MiT weights '
                                  'are incomplete')
            out[f'{base}attn.attn.in_proj_{param}'] = torch.cat([v, kv], dim=0)
        elif rest.startswith('attn.kv.'):
            continue  # fused into in_proj above
        elif rest.startswith('attn.proj.'):
            out[f'{base}attn.attn.out_proj.{param}'] = v
        elif rest.startswith(('attn.sr.', 'attn.norm.', 'norm1.', 'norm2.')):
            out[base + rest] = v
        elif rest.startswith('mlp.'):
            idx = {'mlp.fc1.': '0', 'mlp.dwconv.dwconv.': '1', 'mlp.fc2.': '4'}
            prefix = next((p for p in idx if rest.startswith(p)), None)
            if prefix is None:
                raise SegkitError(f'unrecognised key {k!r} in these MiT weights')
            if prefix != 'mlp.dwconv.dwconv.' and param == 'weight':
                v = v.reshape(*v.shape, 1, 1)  # Linear -> 1x1 conv
            out[f'{base}ffn.layers.{idx[prefix]}.{param}'] = v
        else:
            raise SegkitError(f'unrecognised key {k!r} in these MiT weights')
    return out


def infer_mit_arch(mmseg_state_dict: Mapping) -> str:
    """``'b0'``..``'b5'`` from mmseg-layout MiT weights (stage-1 width, depths)."""
    width, depths = _mit_shape(mmseg_state_dict)
    for arch, spec in MIT_ARCHS.items():
        if spec == (width, depths):
            return arch
    raise SegkitError(f'unrecognised MiT variant (stage-1 width {width}, blocks per '
                      f'stage {list(depths)}); supported: mit-b0..b5')


def _mit_shape(sd: Mapping) -> tuple[int, tuple]:
    width = sd['layers.0.0.projection.weight'].shape[0]
    depths = []
    for i in range(4):
        blocks = {int(m.group(1)) for k in sd
                  if (m := re.match(rf'^layers\.{i}\.1\.(\d+)\.', k))}
        depths.append(max(blocks) + 1 if blocks else 0)
    return width, tuple(depths)


def convert_mit(state_dict: Mapping, arch: Optional[str] = None) -> OrderedDict:
    """MiT weights (SegFormer release or Hugging Face) -> mmseg keys.

    With ``arch``, the weights must be that variant (SegkitError otherwise).
    """
    layout = _expect_kind(state_dict, 'mit')
    if layout == 'hf':
        state_dict = hf_mit_to_official(state_dict)
    out = official_mit_to_mmseg(state_dict)
    if 'layers.0.0.projection.weight' not in out:
        raise SegkitError('these MiT weights have no patch_embed1.proj.weight; the file '
                          'is incomplete')
    found = infer_mit_arch(out)
    if arch is not None and arch != found:
        width, depths = MIT_ARCHS[found]
        raise SegkitError(f'--arch {arch} does not match the weights: they are mit-{found} '
                          f'(stage-1 width {width}, blocks per stage {list(depths)}); '
                          f'rerun with --arch {found} or without --arch')
    return out


def mit_backbone_cfg(arch: str) -> dict:
    """mmseg ``MixVisionTransformer`` config for a variant (as mmseg's segformer configs)."""
    if arch not in MIT_ARCHS:
        raise SegkitError(f'unknown MiT arch {arch!r}; use one of {", ".join(MIT_ARCHS)}')
    width, depths = MIT_ARCHS[arch]
    return dict(type='MixVisionTransformer', in_channels=3, embed_dims=width,
                num_stages=4, num_layers=list(depths), num_heads=[1, 2, 5, 8],
                patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
                out_indices=(0, 1, 2, 3), mlp_ratio=4, qkv_bias=True)


# --------------------------------------------------------------------------- Swin

_HF5_SWIN_BLOCK = [
    ('attention.q_proj.', 'attention.self.query.'),
    ('attention.k_proj.', 'attention.self.key.'),
    ('attention.v_proj.', 'attention.self.value.'),
    ('attention.relative_position_bias.relative_position_bias_table',
     'attention.self.relative_position_bias_table'),
    ('attention.relative_position_bias.relative_position_index',
     'attention.self.relative_position_index'),
    ('attention.o_proj.', 'attention.output.dense.'),
    ('mlp.fc1.', 'intermediate.dense.'),
    ('mlp.fc2.', 'output.dense.'),
]


def _hf_swin_out_norms(state_dict: Mapping) -> dict:
    """``SwinBackbone``'s per-stage output norms -> mmseg ``norm{i}``."""
    out = {}
    for k, v in state_dict.items():
        m = re.match(r'^hidden_states_norms\.stage(\d+)\.(\w+)$', k)
        if m:
            out[f'norm{int(m.group(1)) - 1}.{m.group(2)}'] = v
    return out


def hf_swin_to_official(state_dict: Mapping) -> OrderedDict:
    """Hugging Face Swin keys -> the Swin release's keys.

    Fuses query/key/value into ``attn.qkv`` (rows q, k, v); drops the classifier
    and ``SwinBackbone``'s ``hidden_states_norms`` (see :func:`convert_swin`).
    """
    sd = _strip_prefix(state_dict, 'swin.')
    out = OrderedDict()
    for k, v in sd.items():
        if k.startswith(('classifier.', 'hidden_states_norms.')):
            continue
        m = re.match(r'^encoder\.layers\.(\d+)\.blocks\.(\d+)\.(.+)$', k)
        if m:
            base = f'layers.{m.group(1)}.blocks.{m.group(2)}.'
            rest = m.group(3)
            for new, old in _HF5_SWIN_BLOCK:
                if rest.startswith(new):
                    rest = old + rest[len(new):]
            if rest.startswith('attention.self.query.'):
                param = rest.rsplit('.', 1)[1]
                pre = k[:len(k) - len(m.group(3))]
                parts = []
                for name, name5 in (('query', 'q_proj'), ('key', 'k_proj'),
                                    ('value', 'v_proj')):
                    t = sd.get(f'{pre}attention.self.{name}.{param}',
                               sd.get(f'{pre}attention.{name5}.{param}'))
                    if t is None:
                        raise SegkitError(f'{k} has no matching {name}.{param}; the '
                                          'Swin weights are incomplete')
                    parts.append(t)
                out[f'{base}attn.qkv.{param}'] = torch.cat(parts, dim=0)
                continue
            if rest.startswith(('attention.self.key.', 'attention.self.value.')):
                continue  # fused with query above
            for old, new in (('attention.self.relative_position_bias_table',
                              'attn.relative_position_bias_table'),
                             ('attention.self.relative_position_index',
                              'attn.relative_position_index'),
                             ('attention.output.dense.', 'attn.proj.'),
                             ('layernorm_before.', 'norm1.'),
                             ('layernorm_after.', 'norm2.'),
                             ('intermediate.dense.', 'mlp.fc1.'),
                             ('output.dense.', 'mlp.fc2.')):
                if rest.startswith(old):
                    out[base + new + rest[len(old):]] = v
                    break
            else:
                raise SegkitError(f'unrecognised key {k!r} in these Hugging Face Swin '
                                  'weights')
            continue
        m = re.match(r'^encoder\.layers\.(\d+)\.downsample\.(.+)$', k)
        if m:
            out[f'layers.{m.group(1)}.downsample.{m.group(2)}'] = v
            continue
        for old, new in (('embeddings.patch_embeddings.projection.', 'patch_embed.proj.'),
                         ('embeddings.norm.', 'patch_embed.norm.'),
                         ('layernorm.', 'norm.')):
            if k.startswith(old):
                out[new + k[len(old):]] = v
                break
        else:
            if k.startswith('pooler.'):
                continue
            raise SegkitError(f'unrecognised key {k!r} in these Hugging Face Swin '
                              'weights; expected swin.embeddings/encoder/layernorm keys')
    return out


def _unfold_reduction_order(w: torch.Tensor) -> torch.Tensor:
    # The release concatenates the 2x2 neighbours as (0,0),(1,0),(0,1),(1,1) along
    # channels; mmseg's PatchMerging uses nn.Unfold (channel-major, then (0,0),
    # (0,1),(1,0),(1,1)). Same permutation as mmseg's swin2mmseg.py.
    out_ch, in_ch = w.shape
    w = w.reshape(out_ch, 4, in_ch // 4)
    return w[:, [0, 2, 1, 3], :].transpose(1, 2).reshape(out_ch, in_ch)


def _unfold_norm_order(w: torch.Tensor) -> torch.Tensor:
    in_ch = w.shape[0]
    w = w.reshape(4, in_ch // 4)
    return w[[0, 2, 1, 3], :].transpose(0, 1).reshape(in_ch)


def official_swin_to_mmseg(state_dict: Mapping) -> OrderedDict:
    """Swin release keys -> mmseg ``SwinTransformer`` keys (as mmseg's swin2mmseg.py).

    Differences from swin2mmseg.py, both on purpose: ``attn_mask`` and
    ``relative_position_index`` buffers are dropped (mmseg computes its own), and
    the final ``norm`` becomes ``norm{last}`` (mmseg's output norm of the last
    stage, which sees the same features), instead of being left unused.
    """
    n_stages = 1 + max((int(m.group(1)) for k in state_dict
                        if (m := re.match(r'^layers\.(\d+)\.', k))), default=-1)
    out = OrderedDict()
    for k, v in state_dict.items():
        if k.startswith('head.') or k.endswith(('.attn_mask', 'relative_position_index')):
            continue
        m = re.match(r'^layers\.(\d+)\.blocks\.(\d+)\.(.+)$', k)
        if m:
            base = f'stages.{m.group(1)}.blocks.{m.group(2)}.'
            rest = m.group(3)
            for old, new in (('attn.', 'attn.w_msa.'), ('mlp.fc1.', 'ffn.layers.0.0.'),
                             ('mlp.fc2.', 'ffn.layers.1.'), ('norm1.', 'norm1.'),
                             ('norm2.', 'norm2.')):
                if rest.startswith(old):
                    out[base + new + rest[len(old):]] = v
                    break
            else:
                raise SegkitError(f'unrecognised key {k!r} in these Swin weights')
            continue
        m = re.match(r'^layers\.(\d+)\.downsample\.(reduction|norm)\.(\w+)$', k)
        if m:
            if m.group(2) == 'reduction':
                v = _unfold_reduction_order(v)
            else:
                v = _unfold_norm_order(v)
            out[f'stages.{m.group(1)}.downsample.{m.group(2)}.{m.group(3)}'] = v
            continue
        m = re.match(r'^patch_embed\.(proj|norm)\.(\w+)$', k)
        if m:
            sub = 'projection' if m.group(1) == 'proj' else 'norm'
            out[f'patch_embed.{sub}.{m.group(2)}'] = v
            continue
        m = re.match(r'^norm\.(\w+)$', k)
        if m and n_stages:
            out[f'norm{n_stages - 1}.{m.group(1)}'] = v
            continue
        if k == 'absolute_pos_embed':
            out[k] = v
            continue
        raise SegkitError(f'unrecognised key {k!r} in these Swin weights; expected the '
                          'Swin release layout (patch_embed, layers.N.blocks, norm)')
    return out


def convert_swin(state_dict: Mapping) -> OrderedDict:
    """Swin weights (Swin release or Hugging Face) -> mmseg ``SwinTransformer`` keys."""
    layout = _expect_kind(state_dict, 'swin')
    out_norms = {}
    if layout == 'hf':
        out_norms = _hf_swin_out_norms(state_dict)
        state_dict = hf_swin_to_official(state_dict)
    out = official_swin_to_mmseg(state_dict)
    out.update(out_norms)  # a SwinBackbone's own per-stage norms win
    return out


def swin_arch_from_weights(mmseg_state_dict: Mapping) -> dict:
    """embed_dims, depths, num_heads, window_size, mlp_ratio of mmseg-layout Swin weights."""
    sd = mmseg_state_dict
    try:
        proj = sd['patch_embed.projection.weight']
        depths, heads = [], []
        for i in range(8):
            blocks = {int(m.group(1)) for k in sd
                      if (m := re.match(rf'^stages\.{i}\.blocks\.(\d+)\.', k))}
            if not blocks:
                break
            depths.append(max(blocks) + 1)
            table = sd[f'stages.{i}.blocks.0.attn.w_msa.relative_position_bias_table']
            heads.append(table.shape[1])
        table = sd['stages.0.blocks.0.attn.w_msa.relative_position_bias_table']
        fc1 = sd['stages.0.blocks.0.ffn.layers.0.0.weight']
    except KeyError as err:
        raise SegkitError(f'these Swin weights have no {err.args[0]}; the file is '
                          'incomplete') from None
    window = (round(table.shape[0] ** 0.5) + 1) // 2  # table is (2w-1)^2 x heads
    embed = proj.shape[0]
    return dict(embed_dims=embed, depths=tuple(depths), num_heads=tuple(heads),
                window_size=window, patch_size=proj.shape[-1],
                mlp_ratio=fc1.shape[0] / embed,
                qkv_bias='stages.0.blocks.0.attn.w_msa.qkv.bias' in sd)


def swin_backbone_cfg(arch: Optional[dict] = None) -> dict:
    """mmseg ``SwinTransformer`` config (default Swin-T, as mask2former_swin-t)."""
    a = dict(SWIN_T, patch_size=4, mlp_ratio=4, qkv_bias=True)
    a.update(arch or {})
    mlp = a['mlp_ratio']
    return dict(type='SwinTransformer', pretrain_img_size=224,
                embed_dims=a['embed_dims'], patch_size=a['patch_size'],
                window_size=a['window_size'],
                mlp_ratio=int(mlp) if float(mlp).is_integer() else mlp,
                depths=list(a['depths']), num_heads=list(a['num_heads']),
                strides=(a['patch_size'], 2, 2, 2)[:len(a['depths'])],
                qkv_bias=a['qkv_bias'], patch_norm=True,
                out_indices=tuple(range(len(a['depths']))))


def _is_swin_t(arch: dict) -> bool:
    return all(tuple(arch[k]) == tuple(v) if isinstance(v, tuple) else arch[k] == v
               for k, v in SWIN_T.items())


# -------------------------------------------------------------------- MobileNetV3

def convert_mobilenetv3(state_dict: Mapping) -> OrderedDict:
    """torchvision MobileNetV3 ``features`` (or DeepLabV3's ``backbone``) -> mmseg keys.

    torchvision's InvertedResidual is ``block = [expand?, depthwise, se?, project]``
    with each conv a ``Conv2dNormActivation`` (``.0`` conv, ``.1`` BN); mmseg's
    ``InvertedResidualV3`` names them ``expand_conv``, ``depthwise_conv``, ``se``
    (``conv1``/``conv2``), ``linear_conv`` with ``.conv`` / ``.bn``.
    """
    _expect_kind(state_dict, 'mobilenetv3')
    prefix = 'backbone.' if any(k.startswith('backbone.') for k in state_dict) else 'features.'
    sd = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                     if k.startswith(prefix))  # drops classifier / aux_classifier
    layers: dict[int, dict] = {}
    for k, v in sd.items():
        m = re.match(r'^(\d+)\.(.+)$', k)
        if not m:
            raise SegkitError(f'unrecognised key {prefix}{k!r} in these MobileNetV3 weights')
        layers.setdefault(int(m.group(1)), {})[m.group(2)] = v
    out = OrderedDict()
    for i in sorted(layers):
        params = layers[i]
        if not any(k.startswith('block.') for k in params):
            # stem / final 1x1 conv: Conv2dNormActivation
            for k, v in params.items():
                out[f'layer{i}.' + _conv_bn(k, prefix, i)] = v
            continue
        idx = sorted({int(m.group(1)) for k in params
                      if (m := re.match(r'^block\.(\d+)\.', k))})
        se = {j for j in idx if f'block.{j}.fc1.weight' in params}
        convs = [j for j in idx if j not in se]
        if len(convs) not in (2, 3) or len(se) > 1:
            raise SegkitError(f'unrecognised block layout at {prefix}{i} in these '
                              'MobileNetV3 weights')
        names = (['expand_conv'] if len(convs) == 3 else []) + ['depthwise_conv',
                                                                 'linear_conv']
        role = dict(zip(convs, names))
        for k, v in params.items():
            m = re.match(r'^block\.(\d+)\.(.+)$', k)
            j, rest = int(m.group(1)), m.group(2)
            if j in se:
                sm = re.match(r'^fc([12])\.(weight|bias)$', rest)
                if not sm:
                    raise SegkitError(f'unrecognised key {prefix}{i}.{k} in these '
                                      'MobileNetV3 weights')
                out[f'layer{i}.se.conv{sm.group(1)}.conv.{sm.group(2)}'] = v
            else:
                out[f'layer{i}.{role[j]}.' + _conv_bn(rest, prefix, f'{i}.block.{j}')] = v
    return out


def _conv_bn(rest: str, prefix: str, where) -> str:
    m = re.match(r'^([01])\.(\w+)$', rest)
    if not m:
        raise SegkitError(f'unrecognised key {prefix}{where}.{rest} in these MobileNetV3 '
                          'weights')
    return ('conv.' if m.group(1) == '0' else 'bn.') + m.group(2)


def mobilenetv3_arch_from_weights(mmseg_state_dict: Mapping) -> str:
    n = 1 + max(int(m.group(1)) for k in mmseg_state_dict
                if (m := re.match(r'^layer(\d+)\.', k)))
    archs = {17: 'large', 13: 'small'}
    if n not in archs:
        raise SegkitError(f'unrecognised MobileNetV3 variant ({n} layers; large has 17, '
                          'small 13)')
    return archs[n]


def mobilenetv3_backbone_cfg(arch: str = 'large') -> dict:
    """mmseg ``MobileNetV3``; BN eps 1e-3 as torchvision trained it (mmseg default 1e-5)."""
    out = (3, 6, 12, 16) if arch == 'large' else (1, 3, 8, 12)
    return dict(type='MobileNetV3', arch=arch, norm_cfg=dict(type='BN', eps=0.001),
                out_indices=out)


# ------------------------------------------------------------------- verification

# Keys the mmseg backbone has that no pretrained file carries; they are filled from
# the freshly built backbone (what mmseg itself would leave in them):
_FILLABLE = {
    # window-size-derived index buffer; LayerNorms mmseg adds per output stage
    'swin': (r'.*\.relative_position_index$', r'^norm\d+\.(weight|bias)$'),
    'mobilenetv3': (r'.*\.num_batches_tracked$',),  # BN step counter, unused in eval
    'mit': (),
}


def build_backbone(cfg: dict) -> torch.nn.Module:
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    return MODELS.build(dict(cfg))


def verify(kind: str, state_dict: dict, cfg: dict,
           hint: str = 'check SRC is the right model') -> tuple[OrderedDict, list]:
    """Check ``state_dict`` strict-loads into the backbone ``cfg`` builds.

    Returns ``(state_dict in the backbone's key order, filled keys)``; raises
    :class:`SegkitError` naming the missing / unexpected / mis-shaped keys.
    """
    model = build_backbone(cfg)
    target = model.state_dict()
    fill = [re.compile(p) for p in _FILLABLE[kind]]
    filled = [k for k in target if k not in state_dict and any(rx.match(k) for rx in fill)]
    missing = [k for k in target if k not in state_dict and k not in filled]
    unexpected = [k for k in state_dict if k not in target]
    shapes = [f'{k} {tuple(state_dict[k].shape)} vs {tuple(target[k].shape)}'
              for k in target if k in state_dict and state_dict[k].shape != target[k].shape]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (('missing', missing), ('unexpected', unexpected),
                             ('shape mismatch', shapes)):
            if items:
                parts.append(f'{len(items)} {label} (e.g. {items[0]})')
        raise SegkitError(f'converted {kind} weights would not load into mmseg '
                          f'{cfg["type"]}: {"; ".join(parts)}; {hint}')
    out = OrderedDict()
    for k, v in target.items():
        out[k] = v.detach().clone() if k in filled else state_dict[k].detach().contiguous()
    model.load_state_dict(out, strict=True)  # the real check
    return out, filled


# --------------------------------------------------------------------------- files

def default_dst(kind: str, arch: Optional[str] = None) -> Path:
    if kind == 'mit':
        return CHECKPOINT_DIR / f'mit_{arch or "b2"}_mmseg.pth'
    return CHECKPOINT_DIR / PRETRAINED[kind]


def save_atomic(obj, dst: Path) -> None:
    """torch.save through segkit.io's atomic write: never a half-written file."""
    atomic_write(str(dst), lambda tmp: torch.save(obj, tmp), durable=True)


def convert_state_dict(kind: str, state_dict: Mapping, arch: Optional[str] = None):
    """Convert and verify in memory: ``(mmseg state dict, info dict)``."""
    if kind not in KINDS:
        raise SegkitError(f'unknown kind {kind!r}; use one of {", ".join(KINDS)}')
    if arch is not None and kind != 'mit':
        raise SegkitError(f'--arch applies to mit only; {kind} reads its variant '
                          'from the weights')
    layout = _expect_kind(state_dict, kind)
    if kind == 'mit':
        converted = convert_mit(state_dict, arch)
        arch = infer_mit_arch(converted)
        cfg = mit_backbone_cfg(arch)
        variant = f'mit-{arch}'
    elif kind == 'swin':
        converted = convert_swin(state_dict)
        sw = swin_arch_from_weights(converted)
        cfg = swin_backbone_cfg(sw)
        variant = 'swin-t' if _is_swin_t(sw) else (
            f'swin embed {sw["embed_dims"]} depths {list(sw["depths"])} '
            f'window {sw["window_size"]}')
    else:
        converted = convert_mobilenetv3(state_dict)
        arch = mobilenetv3_arch_from_weights(converted)
        cfg = mobilenetv3_backbone_cfg(arch)
        variant = f'mobilenet_v3_{arch}'
    out, filled = verify(kind, converted, cfg, f'SRC looks like {variant} but is incomplete '
                         'or another model; download it again')
    info = dict(kind=kind, layout=layout, variant=variant, backbone=cfg,
                source_tensors=len(state_dict), converted=len(converted),
                filled=filled, arch=arch if kind != 'swin' else None)
    return out, info


def convert_file(kind: str, src, dst=None, arch: Optional[str] = None,
                 force: bool = False, console=None) -> Path:
    """Convert the weights at ``src`` and write ``{'state_dict', 'meta'}`` to ``dst``.

    ``dst`` defaults to the path the configs expect (segkit/facts.py). An
    existing ``dst`` is left alone unless ``force``.
    """
    if kind not in KINDS:
        raise SegkitError(f'unknown kind {kind!r}; use one of {", ".join(KINDS)}')
    if arch is not None and arch not in MIT_ARCHS:
        raise SegkitError(f'unknown --arch {arch!r}; use one of {", ".join(MIT_ARCHS)}')
    src_path, state_dict = load_state_dict(src)
    if dst is not None:
        _refuse_existing(Path(dst), force)  # before the slow part
    out, info = convert_state_dict(kind, state_dict, arch)
    if dst is None:
        if kind == 'swin' and info['variant'] != 'swin-t':
            raise SegkitError(f'these are {info["variant"]} weights, not Swin-T; pass DST '
                              'explicitly (the configs expect Swin-T)')
        if kind == 'mobilenetv3' and info['arch'] != 'large':
            raise SegkitError('these are MobileNetV3-Small weights; pass DST explicitly '
                              '(the configs expect MobileNetV3-Large)')
        dst = default_dst(kind, info['arch'])
    dst = Path(dst)
    _refuse_existing(dst, force)
    if dst.resolve() == src_path.resolve():
        raise SegkitError(f'DST {dst} is the source file; write somewhere else')
    meta = dict(converter=CONVERTER, kind=kind, variant=info['variant'],
                source=str(src_path), source_layout=info['layout'],
                backbone=info['backbone'], tensors=len(out),
                filled_from_init=info['filled'])
    save_atomic({'state_dict': out, 'meta': meta}, dst)
    _summary(console, src_path, dst, info, out)
    return dst


def _refuse_existing(dst: Path, force: bool) -> None:
    if dst.exists() and not force:
        raise SegkitError(f'{dst} already exists; pass --force to overwrite it')
    if dst.exists() and dst.is_dir():
        raise SegkitError(f'DST {dst} is a folder; give a file name ending in .pth')


def _summary(console, src: Path, dst: Path, info: dict, out: Mapping) -> None:
    from rich.console import Console
    from rich.table import Table
    console = console or Console()
    n_params = sum(v.numel() for v in out.values() if v.is_floating_point())
    table = Table(title=f'{info["kind"]} weights -> mmseg {info["backbone"]["type"]}',
                  show_header=False)
    table.add_row('source', f'{src} ({info["layout"]} layout, '
                            f'{info["source_tensors"]} tensors)')
    table.add_row('variant', info['variant'])
    how = {'mit': 'q+kv fused, head dropped', 'swin': 'qkv fused, head dropped',
           'mobilenetv3': 'classifier heads dropped'}[info['kind']]
    table.add_row('converted', f'{info["converted"]} tensors, {n_params / 1e6:.1f}M '
                               f'values ({how})')
    if info['filled']:
        table.add_row('from init', f'{len(info["filled"])} tensors mmseg adds '
                                   '(buffers, output norms)')
    table.add_row('check', 'strict load into the mmseg backbone: ok')
    table.add_row('written', str(dst))
    console.print(table)
