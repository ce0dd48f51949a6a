"""Hugging Face transformers peers of segkit's recipes: the same model built from its
config (random weights), bf16 autocast, the same batch and crop; training images/s
and peak memory, to set beside ``tools/benchmark.py``'s numbers.

    python -m segkit.bench.hf_peer {segformer,mask2former} --batch 6 --size 512 [--json OUT]

``SegformerForSemanticSegmentation`` with MiT-B2's sizes (21 classes, VOC);
``Mask2FormerForUniversalSegmentation`` with a Swin-T backbone (150 classes, ADE20K;
10 masks per image, like tools/benchmark.py's synthetic labels). AdamW (fused on
CUDA). Needs transformers (not a segkit dependency).
"""
from __future__ import annotations

import argparse
import statistics

import torch

from segkit.bench import timed, write_json
from segkit.errors import SegkitError

MODELS = ('segformer', 'mask2former')


def build(name: str):
    try:
        import transformers as tf
    except ImportError as err:
        raise SegkitError('the Hugging Face peer needs transformers: '
                          'pip install transformers') from err
    if name == 'segformer':  # MiT-B2 (nvidia/mit-b2's config)
        cfg = tf.SegformerConfig(depths=[3, 4, 6, 3], hidden_sizes=[64, 128, 320, 512],
                                 decoder_hidden_size=768, num_labels=21)
        return tf.SegformerForSemanticSegmentation(cfg), 21
    if name == 'mask2former':  # Swin-T backbone, ADE20K head
        swin = tf.SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                             window_size=7, drop_path_rate=0.3,
                             out_features=['stage1', 'stage2', 'stage3', 'stage4'])
        cfg = tf.Mask2FormerConfig(backbone_config=swin, num_labels=150)
        return tf.Mask2FormerForUniversalSegmentation(cfg), 150
    raise SegkitError(f'unknown model {name!r}: one of {", ".join(MODELS)}')


def batch_of(name: str, classes: int, batch: int, size: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randn(batch, 3, size, size, generator=g).to(device)
    if name == 'segformer':
        return dict(pixel_values=pixels,
                    labels=torch.randint(0, classes, (batch, size, size), generator=g).to(device))
    masks, labels = [], []
    for _ in range(batch):  # 10 classes per image, each a random region
        cls = torch.randperm(classes, generator=g)[:10]
        region = torch.randint(0, 10, (size // 32, size // 32), generator=g)
        region = region.repeat_interleave(32, 0).repeat_interleave(32, 1)
        masks.append((region[None] == torch.arange(10)[:, None, None]).float().to(device))
        labels.append(cls.to(device))
    return dict(pixel_values=pixels, mask_labels=masks, class_labels=labels)


def run(name: str, batch: int, size: int, iters: int = 20, warmup: int = 5,
        device: str = 'cuda', amp: bool = True) -> dict:
    torch.manual_seed(0)
    model, classes = build(name)
    model.to(device).train()
    cuda = device.startswith('cuda')
    opt = torch.optim.AdamW(model.parameters(), lr=6e-5, fused=cuda)
    data = batch_of(name, classes, batch, size, device)
    losses = []

    def step():
        with torch.autocast(device.split(':')[0], dtype=torch.bfloat16, enabled=amp):
            loss = model(**data).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    timed(step, warmup, device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    median = statistics.median(timed(step, iters, device))
    return {'label': f'hf-{name}', 'model': type(model).__name__, 'batch': batch,
            'size': [size, size], 'amp': 'bf16' if amp else None, 'iters': iters,
            'train': {'img_per_s': batch / median, 'iter_s_median': median},
            'loss_last': float(losses[-1]),
            'memory': {'peak_bytes': torch.cuda.max_memory_allocated() if cuda else None}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('model', choices=MODELS)
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--iters', type=int, default=20)
    p.add_argument('--warmup', type=int, default=5)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--fp32', action='store_true', help='no autocast')
    p.add_argument('--json', help='write the result here')
    args = p.parse_args(argv)
    res = run(args.model, args.batch, args.size, args.iters, args.warmup, args.device,
              amp=not args.fp32)
    peak = res['memory']['peak_bytes']
    print(f"{res['label']} ({res['model']}, batch {args.batch}, {args.size}px, "
          f"{res['amp'] or 'fp32'}): {res['train']['img_per_s']:.2f} img/s train"
          + (f', peak {peak / 2**30:.2f} GiB' if peak else ''))
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == '__main__':
    from segkit.engine.cli import run_tool
    run_tool(main)
