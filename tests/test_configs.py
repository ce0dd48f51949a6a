"""Every config parses, is a sound epoch-based config, says in its name what it
does, schedules the LR as computed by hand, builds and trains one step, and runs
its pipelines on a sample shaped like its dataset."""
import math
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT
from segkit.engine.config import load_config, parse_config_name
from segkit.engine.epoch_checks import epoch_invariant_errors

LEAVES = sorted(p for p in (ROOT / 'configs').rglob('*.py') if '_base_' not in p.parts)
BASES = sorted((ROOT / 'configs' / '_base_').rglob('*.py'))
IDS = [p.stem for p in LEAVES]

# name token -> (train dataset type, num_classes, sample image (h, w), label range)
DATASETS = {
    'ade20k': ('ADE20KDataset', 150, (512, 683), (0, 150)),  # raw 0 = "other"
    'voc12aug': ('PascalVOCDataset', 21, (375, 500), (0, 20)),
    'demo': ('BaseSegDataset', 5, (64, 64), (0, 4)),
}


def test_config_inventory():
    """No vacuous passes: the configs the issues name are all here."""
    names = {p.stem for p in LEAVES}
    assert len(LEAVES) >= 18, names
    assert 'mask2former_swin-t_3xb4-200e_ade20k-512x512' in names
    assert 'segformer_mit-b2_3xb6-200e_voc12aug-512x512' in names
    for variant in ('cw-ce', 'focal', 'lovasz', 'ce-lovasz', 'strong-aug', 'cosine',
                    'aux-head'):
        assert f'segformer_mit-b2_3xb6-200e_voc12aug-512x512_{variant}' in names
    assert 'segformer_mit-b4_3xb6-200e_voc12aug-512x512' in names
    assert 'mask2former_mobilenetv3-l_3xb4-200e_ade20k-512x512' in names
    bases = {b.relative_to(ROOT / 'configs' / '_base_').as_posix() for b in BASES}
    assert {'default_runtime.py', 'schedules/epoch_loop.py', 'datasets/ade20k_epoch.py',
            'datasets/voc12aug_epoch.py', 'datasets/demo.py',
            'models/mask2former_swin-t.py'} <= bases, bases


@pytest.mark.parametrize('path', BASES, ids=[b.stem for b in BASES])
def test_base_parses_and_registers_segkit(path):
    """Each base loads, and every config that inherits the runtime registers segkit
    through its one custom_imports entry."""
    cfg = load_config(str(path))
    assert cfg.filename == str(path)
    if 'models' not in path.parts and 'datasets' not in path.parts:
        assert cfg.custom_imports.imports == ['segkit.plugins']
        assert cfg.default_scope == 'mmseg'
    else:
        assert cfg.get('model') or cfg.get('train_dataloader'), path


@pytest.mark.parametrize('path', LEAVES, ids=IDS)
def test_leaf_registers_segkit_once(path):
    cfg = load_config(str(path))
    assert cfg.custom_imports.imports == ['segkit.plugins']


@pytest.mark.parametrize('path', LEAVES, ids=IDS)
def test_leaf_is_a_sound_epoch_config(path):
    cfg = load_config(str(path))
    assert epoch_invariant_errors(cfg) == []


@pytest.mark.parametrize('path', LEAVES, ids=IDS)
def test_name_agrees_with_content(path):
    cfg = load_config(str(path))
    name = parse_config_name(str(path))
    assert name is not None and name.unit == 'e'
    assert cfg.num_gpus == name.gpus
    assert cfg.train_dataloader.batch_size == name.batch
    assert cfg.train_cfg.max_epochs == name.length
    ds_type, num_classes, _, _ = DATASETS[name.dataset]
    assert cfg.train_dataloader.dataset.type == ds_type
    head = cfg.model.decode_head
    assert head.num_classes == num_classes
    assert tuple(cfg.crop_size) == name.crop
    assert tuple(cfg.model.data_preprocessor.size) == name.crop
    crops = [t['crop_size'] for t in cfg.train_dataloader.dataset.pipeline
             if t['type'] in ('RandomCrop', 'FastRandomCrop')]
    assert crops and all(tuple(c) == name.crop for c in crops)
    if 'mask2former' in path.stem:
        assert len(head.loss_cls.class_weight) == num_classes + 1 or \
            isinstance(head.loss_cls.class_weight, str)


# ------------------------------------------------------------------ LR by hand

def _lrs(cfg, epoch_length, param='lr'):
    """LR (or momentum) used at every iteration, from mmengine's real schedulers
    built the way the Runner builds them."""
    import torch
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS
    opt_cfg = cfg.optim_wrapper.optimizer if 'optim_wrapper' in cfg else dict(lr=0.01)
    base = opt_cfg['lr']
    betas = opt_cfg.get('betas', (0.9, 0.999))
    optim = OptimWrapper(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=base,
                                           betas=betas))
    scheds = [PARAM_SCHEDULERS.build(dict(s), default_args=dict(
        optimizer=optim, epoch_length=epoch_length)) for s in cfg.param_scheduler]
    out = []
    for _ in range(cfg.train_cfg.max_epochs * epoch_length):
        group = optim.param_groups[0]
        out.append(group['lr'] if param == 'lr' else group['betas'][0])
        for s in scheds:
            s.step()
    return base, out


def _check(values, expected: dict):
    assert len(expected) >= 4
    for it, want in expected.items():
        assert math.isclose(values[it], want, rel_tol=1e-6, abs_tol=1e-12), (it, values[it], want)


MAIN = ['mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512',
        'segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512',
        'segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512_cosine']


@pytest.mark.parametrize('stem', MAIN, ids=lambda s: s.split('/')[-1])
def test_main_config_lr_by_hand(stem):
    cfg = load_config(str(ROOT / 'configs' / f'{stem}.py'))
    base, lr = _lrs(cfg, 3)
    W, T = cfg.warmup_epochs * 3, cfg.max_epochs * 3
    mid = (W + T) // 2
    main = cfg.param_scheduler[1]
    expect = {0: base * 1e-6, W - 1: base, W: base}
    if main.type == 'PolyLR':
        p = main.power
        expect.update({mid: base * (1 - (mid - W) / (T - W - 1)) ** p, T - 1: 0.0})
    else:
        assert main.type == 'CosineAnnealingLR'
        cos = lambda i: base * (1 + math.cos(math.pi * (i - W) / (T - W))) / 2  # noqa: E731
        expect.update({mid: cos(mid), T - 1: cos(T - 1)})
    _check(lr, expect)


# ------------------------------------------------------- knobs stay consistent

@pytest.mark.parametrize('stem', ['mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512',
                                  'segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512'])
def test_editing_only_the_knobs_gives_a_consistent_run(stem, tmp_path):
    shutil.copytree(ROOT / 'configs', tmp_path / 'configs')
    path = tmp_path / 'configs' / f'{stem}.py'
    text = path.read_text()
    for knob, value in (('max_epochs', 120), ('warmup_epochs', 7), ('samples_per_gpu', 3)):
        text, n = re.subn(rf'^{knob} = \d+', f'{knob} = {value}', text, flags=re.M)
        assert n == 1, knob
    path.write_text(text)
    cfg = load_config(str(path))
    assert cfg.train_cfg.max_epochs == 120
    warm, main = cfg.param_scheduler
    assert (warm.begin, warm.end, main.begin, main.end) == (0, 7, 7, 120)
    assert cfg.train_dataloader.batch_size == 3
    assert epoch_invariant_errors(cfg) == []
    # variants follow their parent's knobs too
    for variant in path.parent.glob(f'{path.stem}_*.py'):
        vcfg = load_config(str(variant))
        assert vcfg.train_cfg.max_epochs == 120 and vcfg.train_dataloader.batch_size == 3
        assert max(s.end for s in vcfg.param_scheduler) == 120


# ------------------------------------------------- models build and train a step

def _prepare_class_weight_file(cfg, tmp_path, monkeypatch):
    """cw-ce variants load their weights file at build time: give them one."""
    if not cfg.get('class_weight_file'):
        return
    monkeypatch.chdir(tmp_path)
    n = cfg.model.decode_head.num_classes + (1 if 'mask2former' in str(cfg.filename) else 0)
    target = tmp_path / cfg.class_weight_file
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(str([1.0] * (n - 1) + [0.1 if 'mask2former' in str(cfg.filename)
                                              else 1.0]))


def _distinct_models() -> list:
    """One leaf per distinct model + optimizer wrapper (a variant that changes only the
    data pipeline or the schedule trains the same step as its parent: stepping it again
    adds minutes, not coverage; its config is still checked by the other tests)."""
    seen, out = set(), []
    for path in LEAVES:
        cfg = load_config(str(path))
        key = repr((cfg.model, cfg.optim_wrapper))
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


MODEL_LEAVES = _distinct_models()


@pytest.mark.parametrize('path', MODEL_LEAVES, ids=[p.stem for p in MODEL_LEAVES])
def test_model_builds_and_trains_one_step(path, tmp_path, monkeypatch):
    """Every leaf (so mmseg's Mask2Former-Swin-T and SegFormer-B2 models, which ours
    are) builds on CPU and takes a real optimizer step."""
    from segkit.bench.synthetic import build_model, num_classes_of, synthetic_batch, train_step
    cfg = load_config(str(path))
    _prepare_class_weight_file(cfg, tmp_path, monkeypatch)
    size = (64, 64)  # Mask2Former may shrink the input, not the head
    cfg.model.data_preprocessor.size = size
    model = build_model(cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = train_step(model, cfg, synthetic_batch(num_classes_of(cfg), 2, size))
    assert math.isfinite(float(losses['loss'])) and float(losses['loss']) > 0
    changed = sum(not p.detach().equal(before[n]) for n, p in model.named_parameters())
    assert changed > 0.5 * len(before)  # the optimizer really stepped


# ----------------------------------------------------------------- pipelines

def _sample_files(tmp_path, dataset):
    _, _, (h, w), (lo, hi) = DATASETS[dataset]
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    label = rng.integers(lo, hi + 1, (h // 8, w // 8)).astype(np.uint8)
    label = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
    if dataset == 'voc12aug':
        label[:4] = 255  # VOC's boundary pixels
    img_path, seg_path = tmp_path / 'img.jpg', tmp_path / 'seg.png'
    cv2.imwrite(str(img_path), img)
    cv2.imwrite(str(seg_path), label)
    return img_path, seg_path


@pytest.mark.parametrize('path', LEAVES, ids=IDS)
def test_pipelines_run_on_a_sample_shaped_like_the_dataset(path, tmp_path):
    from mmcv.transforms import Compose
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    cfg = load_config(str(path))
    name = parse_config_name(str(path))
    img_path, seg_path = _sample_files(tmp_path, name.dataset)
    reduce_zero = name.dataset == 'ade20k'
    for split in ('train', 'test'):
        loader = cfg[f'{split}_dataloader']
        pipeline = Compose(loader.dataset.pipeline)
        out = pipeline(dict(img_path=str(img_path), seg_map_path=str(seg_path),
                            reduce_zero_label=reduce_zero, seg_fields=[]))
        assert out is not None, f'{split} pipeline dropped the sample'
        img = out['inputs']
        seg = out['data_samples'].gt_sem_seg.data
        if split == 'train':  # cropped (smaller images stay smaller: the model pads)
            assert all(a <= b for a, b in zip(img.shape[-2:], name.crop))
            assert tuple(seg.shape[-2:]) == tuple(img.shape[-2:])
        values = set(seg.unique().tolist()) - {255}
        assert values and max(values) < DATASETS[name.dataset][1]


def test_set_max_epochs_stretches_the_schedule():
    from segkit.engine.config import set_max_epochs
    cfg = load_config(str(ROOT / 'configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512.py'))
    set_max_epochs(cfg, 100)
    warm, poly = cfg.param_scheduler
    assert (warm.end, poly.begin, poly.end, cfg.train_cfg.max_epochs) == (7.5, 7.5, 100, 100)
    assert epoch_invariant_errors(cfg) == []
    # a 1-epoch run of 4 iterations: the warmup keeps one iteration, poly follows it
    set_max_epochs(cfg, 1, epoch_length=4)
    warm, poly = cfg.param_scheduler
    assert int(warm.end * 4) == 1 and poly.begin == warm.end and poly.end == 1
    assert cfg.train_cfg.val_interval == 1 and cfg.default_hooks.checkpoint.interval == 1
