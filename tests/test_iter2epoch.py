"""tools/iter2epoch.py on real mmseg model-zoo configs, checked with mmengine's own
schedulers: both configs' param_scheduler go through the runner's build path
(``Runner._build_param_scheduler`` -> ``build_iter_from_epoch`` with
``epoch_length = len(train_dataloader)`` of a real DefaultSampler DataLoader), then
are stepped through every iteration of both runs and compared at equal samples.
"""
import copy
import functools
import math
import random
import subprocess
import sys
import warnings
from fractions import Fraction
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.runner.loops import EpochBasedTrainLoop, IterBasedTrainLoop
from torch.utils.data import DataLoader

from segkit.engine.config import load_config
from segkit.convert.iter2epoch import (convert, epoch_length, epoch_value,
                                       milestone_value, write)
from segkit.engine.epoch_checks import epoch_invariant_errors
from segkit.errors import SegkitError

POLY = 'mmseg::pspnet/pspnet_r50-d8_4xb4-160k_ade20k-512x512.py'
WARMUP_POLY = 'mmseg::segformer/segformer_mit-b2_8xb2-160k_ade20k-512x512.py'
STEP = 'mmseg::knet/knet-s3_r50-d8_fcn_8xb2-adamw-80k_ade20k-512x512.py'  # MultiStepLR
THREE_PART = 'mmseg::vpd/vpd_sd_4xb8-25k_nyu-480x480.py'  # Linear + PolyLRRatio + Constant
# the zoo has no cosine schedule: deeplabv3+'s recipe with its poly made cosine
COSINE_BASE = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-40k_cityscapes-512x1024.py'
VOC20K = 'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512.py'
ADE20K, CITYSCAPES, VOC_AUG = 20210, 2975, 1464 + 9118

MEASURED = {}  # recipe -> (iterations compared, max |LR difference|), printed at the end


class _Images(torch.utils.data.Dataset):
    metainfo: dict = {}

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def _loader(n: int, gpus: int, batch: int, epoch_based: bool) -> DataLoader:
    """The train DataLoader rank 0 of ``gpus`` gets, with mmengine's own sampler."""
    with mock.patch('mmengine.dataset.sampler.get_dist_info', return_value=(0, gpus)):
        sampler = (DefaultSampler(_Images(n), shuffle=True) if epoch_based
                   else InfiniteSampler(_Images(n), shuffle=True))
    return DataLoader(_Images(n), batch_size=batch, sampler=sampler)


def lr_curve(cfg, n_images: int, gpus: int, batch: int) -> tuple:
    """(LR at every iteration of the run, the train loop): built as the runner builds it."""
    import mmseg.engine  # noqa: F401 - PolyLRRatio, as a runner in mmseg's scope has it
    tc = cfg.train_cfg
    epoch_based = tc.type == 'EpochBasedTrainLoop'
    loader = _loader(n_images, gpus, batch, epoch_based)
    fake = SimpleNamespace(visualizer=SimpleNamespace())
    loop = (EpochBasedTrainLoop(fake, loader, max_epochs=tc.max_epochs) if epoch_based
            else IterBasedTrainLoop(fake, loader, max_iters=tc.max_iters))
    runner = SimpleNamespace(_train_loop=loop, train_dataloader=loader,
                             max_epochs=loop.max_epochs, max_iters=loop.max_iters,
                             logger=MMLogger.get_current_instance())
    param = torch.nn.Parameter(torch.zeros(1))
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=cfg.optim_wrapper.optimizer.lr))
    with DefaultScope.overwrite_default_scope('mmseg'):
        scheds = Runner._build_param_scheduler(runner, copy.deepcopy(cfg.param_scheduler),
                                               wrapper)
    group = wrapper.param_groups[0]
    lrs = [0.0] * loop.max_iters
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()"
        warnings.simplefilter('ignore')
        for i in range(loop.max_iters):
            lrs[i] = group['lr']
            for s in scheds:
                s.step()
    return lrs, loop


@functools.lru_cache(maxsize=None)
def _source_curve(src, n, gpus, batch):
    return lr_curve(load_config(src), n, gpus, batch)[0]


def check_same_lr(tmp_path, src, gpus, batch, name, epochs=None, n=ADE20K, **kw):
    """Convert, load, and compare the LR at equal samples over both whole runs."""
    dst = str(tmp_path / f'{name}.py')
    info = write(src, dst, gpus, batch, epochs=epochs, **kw)
    cfg = Config.fromfile(dst)
    assert epoch_invariant_errors(cfg) == []
    src_lr = _source_curve(src, n, info.src_gpus, info.src_batch)
    new_lr, loop = lr_curve(cfg, n, gpus, batch)
    # the real dataloader agrees with the converter's epoch length
    assert len(loop.dataloader) == info.epoch_length
    assert loop.max_iters == info.max_epochs * info.epoch_length == len(new_lr)
    k, end = info.scale, info.schedule_iters
    assert end == math.floor(len(src_lr) * k + Fraction(1, 2))  # nearest, as converted
    assert end <= len(new_lr) < end + info.epoch_length
    worst = outside = n_outside = 0.0
    if k == 1:  # same total batch: iteration j has seen exactly what source j has
        assert new_lr[:end] == src_lr
        assert set(new_lr[end:]) <= {src_lr[-1]}  # the tail runs at the final LR
        compared = len(new_lr)
    else:
        # within rounding to whole iterations: new iteration j (j x G x B samples) must lie
        # within the source's LRs from one new iteration before to one after, each
        # widened by a source iteration; past the end, the final LR.
        tol, last = 1e-12 * max(src_lr), len(src_lr) - 1
        compared = 0
        for j, lr in enumerate(new_lr):
            jj = min(j, end - 1)
            lo = max(0, math.floor((jj - 1) / k) - 1)
            hi = min(last, math.ceil((jj + 1) / k) + 1)
            window = src_lr[lo:hi + 1]
            assert min(window) - tol <= lr <= max(window) + tol, (j, lr, lo, hi)
            # measured: vs the source at equal samples (interpolated), and how far outside
            # the two source iterations around that sample count it falls
            i = min(float(jj / k), last)
            a, b = math.floor(i), min(math.floor(i) + 1, last)
            worst = max(worst, abs(lr - (src_lr[a] + (src_lr[b] - src_lr[a]) * (i - a))))
            off = max(min(src_lr[a], src_lr[b]) - lr, lr - max(src_lr[a], src_lr[b]), 0.0)
            outside, n_outside = max(outside, off), n_outside + (off > tol)
            compared += 1
    assert compared == len(new_lr) >= len(src_lr) * k - 1
    MEASURED[name] = (compared, len(src_lr), worst, outside, int(n_outside), max(src_lr))
    return info, cfg, src_lr, new_lr


def _leaf(tmp_path, name, base, body):
    path = tmp_path / name
    path.write_text(f"_base_ = ['{base}']\n{body}\n")
    return str(path)


# ---------------------------------------------------------------- the recipes


def test_poly(tmp_path):
    info, cfg, src_lr, new_lr = check_same_lr(tmp_path, POLY, 4, 4, 'poly 4x4')
    assert (info.max_epochs, info.epoch_length) == (127, 1264)
    assert cfg.param_scheduler[0].end == info.schedule_epochs
    assert cfg.train_cfg.max_epochs == 127
    assert len(src_lr) == 160000 and len(new_lr) == 127 * 1264
    # 8 GPUs x 4 = 32 per iteration vs the source's 16: half an iteration per source one
    info, *_ = check_same_lr(tmp_path, POLY, 8, 4, 'poly 8x4')
    assert info.scale == Fraction(1, 2) and info.schedule_iters == 80000
    assert info.notes and 'not rescaled' in info.notes[0]


def test_warmup_poly_segformer_and_its_knobs(tmp_path, capsys):
    info, cfg, src_lr, new_lr = check_same_lr(tmp_path, WARMUP_POLY, 8, 2, 'warmup+poly 8x2')
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'PolyLR']
    assert cfg.param_scheduler[0].end == cfg.param_scheduler[1].begin == info.warmup_epochs
    assert int(info.warmup_epochs * info.epoch_length) == 1500
    text = (tmp_path / 'warmup+poly 8x2.py').read_text()
    assert '# 1 ep = ceil(ceil(20210 / 8 GPUs) / 2) = 1264 it; 127 ep = 160,528 it x 16' in text
    assert "_base_ = ['mmseg::segformer/segformer_mit-b2_8xb2-160k_ade20k-512x512.py']" in text
    # the shipped leaves' knob names, each read by the config it writes
    for knob in ('num_gpus = 8', 'samples_per_gpu = 2', 'max_epochs = 127', 'warmup_epochs = ',
                 'val_interval = 13', 'checkpoint_interval = 13', 'lr = 6e-05'):
        assert f'\n{knob}' in text
    assert (cfg.train_dataloader.batch_size, cfg.train_cfg.val_interval,
            cfg.default_hooks.checkpoint.interval, cfg.optim_wrapper.optimizer.lr) == (
        2, 13, 13, 6e-05)
    assert cfg.auto_scale_lr.base_batch_size == 16  # the source's 8 x 2: its LR is for it
    from segkit.engine.flows import check_launch_batch
    check_launch_batch(cfg, str(tmp_path / 'warmup+poly 8x2.py'), world=3)  # num_gpus = 8
    out = capsys.readouterr().out
    assert 'WARNING' in out and 'num_gpus = 8' in out  # 8 planned, 3 launched
    # 6 GPUs x 4 = 24: a non-integer 2/3 iteration per source iteration
    info, *_ = check_same_lr(tmp_path, WARMUP_POLY, 6, 4, 'warmup+poly 6x4')
    assert info.scale == Fraction(2, 3) and info.epoch_length == 843
    info, cfg, *_ = check_same_lr(tmp_path, WARMUP_POLY, 8, 2, 'warmup+poly --epochs 40',
                                  epochs=40)
    assert info.stretched and cfg.train_cfg.max_epochs == 40
    assert cfg.param_scheduler[1].end == 40 and info.schedule_iters == 40 * 1264


@pytest.mark.parametrize('gpus, batch', [(8, 2), (6, 4), (10, 7)])
def test_multistep_knet(tmp_path, gpus, batch):
    info, cfg, src_lr, new_lr = check_same_lr(tmp_path, STEP, gpus, batch,
                                              f'multistep {gpus}x{batch}')
    # both drops happen (x0.1 each), at the same samples as the source's
    assert src_lr[-1] == pytest.approx(src_lr[1000] * 0.01)
    drops = [j for j in range(1, len(new_lr)) if new_lr[j] < new_lr[j - 1] * 0.5]
    assert drops == [round(61000 * info.scale), round(73000 * info.scale)]
    L, ms = info.epoch_length, cfg.param_scheduler[1].milestones
    # milestone floats multiply back to whole iterations exactly, or they never fire
    assert all(m * L == int(m * L) for m in ms)
    if (gpus, batch) == (8, 2):
        assert [m * L for m in ms] == [60000, 72000]
    if (gpus, batch) == (10, 7):
        # the 60000 it milestone is 13714 it here, 289 it per epoch, and no float e has
        # e x 289 == 13714 exactly: that drop becomes its own MultiStepLR
        assert [s.type for s in cfg.param_scheduler] == ['LinearLR'] + ['MultiStepLR'] * 2
        assert cfg.param_scheduler[2].milestones == [0]


def test_cosine_from_zoo_recipe(tmp_path):
    src = _leaf(tmp_path, 'deeplabv3plus_r50-d8_4xb2-cosine-40k_cityscapes-512x1024.py',
                COSINE_BASE,
                "param_scheduler = [\n"
                "    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,\n"
                "         end=1500),\n"
                "    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=1500,\n"
                "         end=40000)]")
    info, cfg, *_ = check_same_lr(tmp_path, src, 4, 2, 'warmup+cosine 4x2', n=CITYSCAPES)
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'CosineAnnealingLR']
    assert info.epoch_length == 372 and info.max_epochs == 108
    check_same_lr(tmp_path, src, 3, 4, 'warmup+cosine 3x4', n=CITYSCAPES)


def test_cosine_explicit_t_max_and_stretch(tmp_path):
    # T_max (iterations) longer than the scheduler scales too; --epochs stretches it all
    src = _leaf(tmp_path, 'deeplabv3plus_r50-d8_4xb2-cosT-40k_cityscapes-512x1024.py',
                COSINE_BASE,
                "param_scheduler = [dict(type='CosineAnnealingLR', T_max=50000,\n"
                "    eta_min_ratio=0.01, by_epoch=False, begin=0, end=40000)]")
    info, cfg, *_ = check_same_lr(tmp_path, src, 2, 2, 'cosine T_max --epochs 30', epochs=30,
                                  n=CITYSCAPES)
    assert info.max_epochs == 30 and cfg.param_scheduler[0].end == 30


def test_steplr_between_iterations_becomes_multistep(tmp_path):
    src = _leaf(tmp_path, 'deeplabv3_r50-d8_4xb4-step-20k_voc12aug-512x512.py', VOC20K,
                "param_scheduler = [dict(type='StepLR', step_size=5000, gamma=0.5,\n"
                "    by_epoch=False, begin=0, end=20000)]")
    info, cfg, *_ = check_same_lr(tmp_path, src, 3, 4, 'step 3x4', n=VOC_AUG)  # 6666.7 it
    assert cfg.param_scheduler[0].type == 'MultiStepLR'
    info, cfg, *_ = check_same_lr(tmp_path, src, 2, 4, 'step 2x4', n=VOC_AUG)  # 10000 it
    assert cfg.param_scheduler[0].type == 'StepLR'
    assert cfg.param_scheduler[0].step_size * info.epoch_length == 10000


def test_three_part_schedule_with_mmseg_poly_ratio(tmp_path):
    # NYU is not in the split table: the size must be given; DepthMetric -> rmse, less
    info, cfg, *_ = check_same_lr(tmp_path, THREE_PART, 4, 8, 'linear+polyratio+const 4x8',
                                  n=24231, dataset_size=24231)
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'PolyLRRatio', 'ConstantLR']
    assert cfg.default_hooks.checkpoint.save_best == 'rmse'
    assert cfg.default_hooks.checkpoint.rule == 'less'


# ---------------------------------------------------------------- the rest


def test_epoch_values_multiply_back():
    rng = random.Random(0)
    exact = inexact = 0
    for length in list(range(1, 300)) + [rng.randrange(300, 200000) for _ in range(300)]:
        for j in [1, length - 1, length + 1] + [rng.randrange(1, 400000) for _ in range(30)]:
            if j < 1:
                continue
            assert int(epoch_value(j, length) * length) == j  # begin / end
            e = milestone_value(j, length)
            if e is None:  # e.g. 213948 it at 11 it/ep: its own MultiStep scheduler
                inexact += 1
            else:
                assert e * length == j  # a MultiStepLR milestone fires only then
                exact += 1
    assert exact + inexact > 15000 and exact > 5 * inexact > 0
    assert epoch_value(2 * 1264, 1264) == 2 and isinstance(epoch_value(2528, 1264), int)
    assert milestone_value(213948, 11) is None


def test_epoch_length_is_the_dataloaders():
    for n, g, b in [(20210, 8, 2), (20210, 6, 4), (2975, 4, 2), (10, 4, 4), (7, 8, 1)]:
        assert epoch_length(n, g, b) == len(_loader(n, g, b, epoch_based=True))


def test_counts_the_dataset_when_its_files_are_here(tmp_path):
    root = tmp_path / 'ade'
    for sub, ext in (('images/training', 'jpg'), ('annotations/training', 'png')):
        (root / sub).mkdir(parents=True)
        for i in range(37):
            (root / sub / f'ADE_train_{i:08d}.{ext}').write_bytes(b'')
    src = _leaf(tmp_path, 'pspnet_r50-d8_4xb4-160k_ade20k-512x512.py', POLY,
                f"train_dataloader = dict(dataset=dict(data_root='{root}'))")
    text, info = convert(src, 4, 4)
    assert (info.dataset_size, info.dataset_how) == (37, 'counted')
    assert info.epoch_length == 3 and '37 images, counted' in text
    # a given size wins over the files
    assert convert(src, 4, 4, dataset_size=100)[1].dataset_how == 'given'


def test_table_size_through_concat_and_repeat():
    _, voc = convert('mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512.py', 4, 4)
    assert (voc.dataset_size, voc.dataset_how) == (1464 + 9118, 'table')
    _, chase = convert('mmseg::unet/unet-s5-d16_fcn_4xb4-40k_chase-db1-128x128.py', 4, 4)
    assert chase.dataset_size == 40000 * 20 and chase.save_best == 'mDice'


def _refusal_sources(tmp_path, case):
    base = VOC20K
    bodies = {
        'onecycle': "param_scheduler = [dict(type='OneCycleLR', eta_max=0.01, "
                                "total_steps=20000, by_epoch=False)]",
        'plateau': "param_scheduler = [dict(type='ReduceOnPlateauLR', monitor='mIoU', "
                   "by_epoch=False)]",
        'sampler': "train_dataloader = dict(sampler=dict(_delete_=True, "
                   "type='ClassAwareSampler'))",
        'end past run': "param_scheduler = [dict(type='PolyLR', by_epoch=False, begin=0, "
                        "end=30000)]",
        'epoch scheduler': "param_scheduler = [dict(type='PolyLR', by_epoch=True, begin=0, "
                           "end=10)]",
    }
    return _leaf(tmp_path, f'deeplabv3_r50-d8_4xb4-{case.split()[0]}-20k_voc12aug-512x512.py',
                 base,
                 bodies[case])


@pytest.mark.parametrize('case, reason', [
    ('onecycle', 'is not one segkit can map exactly'),
    ('plateau', 'follows a validation metric'),
    ('sampler', "'ClassAwareSampler' is not InfiniteSampler/DefaultSampler"),
    ('end past run', 'is not inside the run'),
    ('epoch scheduler', 'not stepped by iteration'),
])
def test_refuses_what_it_cannot_map(tmp_path, case, reason):
    with pytest.raises(SegkitError, match=reason) as err:
        convert(_refusal_sources(tmp_path, case), 4, 4)
    assert '\n' not in str(err.value)


def test_refuses_epoch_configs_unknown_sizes_and_ambiguous_batches(tmp_path):
    done = str(tmp_path / 'done.py')
    write(POLY, done, 4, 4)
    with pytest.raises(SegkitError, match='already epoch-based'):
        convert(done, 4, 4)
    with pytest.raises(SegkitError, match='exists: pass --force'):
        write(POLY, done, 4, 4)
    write(POLY, done, 2, 8, force=True)  # --force overwrites
    assert 'samples_per_gpu = 8' in open(done).read()
    with pytest.raises(SegkitError, match='pass --dataset-size'):
        convert(THREE_PART, 4, 8)
    cgnet = 'mmseg::cgnet/cgnet_fcn_4xb4-60k_cityscapes-680x680.py'  # name 4xb4, batch 8
    with pytest.raises(SegkitError, match='pass --src-gpus'):
        convert(cgnet, 4, 4)
    assert convert(cgnet, 4, 4, src_gpus=4)[1].src_total_batch == 32


@pytest.mark.slow  # a real process: the tool's exit codes and one-line error
def test_cli(tmp_path, repo_root):
    dst = tmp_path / 'cli' / 'psp_epoch.py'
    cmd = [sys.executable, str(repo_root / 'tools' / 'iter2epoch.py'), POLY, '--gpus', '4',
           '--batch', '4', '-o', str(dst)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert dst.is_file() and ok.stdout.startswith(f'wrote {dst}: 127 ep x 1264 it')
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2
    assert again.stderr.startswith('error: ') and 'exists' in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


@pytest.fixture(scope='module', autouse=True)
def _report_measured():
    """After the module: what the LR comparisons measured (shown with pytest -s)."""
    yield
    print('\nrecipe: new iterations compared (source iterations); max |LR - source LR '
          'interpolated at equal samples|; max distance outside the LRs of the two source '
          'iterations around that sample count (in how many iterations); LR peak')
    for name, (n, src_n, worst, outside, n_out, top) in MEASURED.items():
        print(f'  {name}: {n} ({src_n}); {worst:.3g}; {outside:.3g} ({n_out}); {top:g}')
