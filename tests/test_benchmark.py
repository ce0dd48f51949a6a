"""tools/benchmark.py and tools/benchmark_data.py on CPU with tiny configs: every
switch runs, --compare / --find-max-batch / the data benchmark write well-formed JSON,
FLOPs are plausible. No timing assertions (timings are machine noise here)."""
import json

import pytest
import torch

from conftest import ROOT, run_py
from segkit.engine.fast_paths import cpu_has_bf16

DEMO_SEG = 'configs/demo/segformer_mit-tiny_1xb8-40e_demo-64x64.py'
DEMO_M2F = 'configs/demo/mask2former_mit-tiny_1xb8-20e_demo-64x64.py'
FAST = ['--synthetic', '--device', 'cpu', '--iters', '2', '--warmup', '1',
        '--infer-iters', '1']
needs_bf16 = pytest.mark.skipif(not cpu_has_bf16(), reason='this CPU has no native bf16')


def _bench(tmp_path, *args):
    from segkit.bench.train_bench import main
    out = tmp_path / 'bench.json'
    assert main([*FAST, *map(str, args), '--json', str(out)]) == 0
    return json.loads(out.read_text())


def _check_setup(s, batch):
    assert s['batch'] == batch
    train = s['train']
    assert train['img_per_s'] > 0 and train['img_per_s_mean'] > 0
    for key in ('iter_s', 'data_wait_s', 'step_s'):
        assert train[key]['median'] >= 0 and train[key]['mean'] >= 0
    assert train['iter_s']['median'] >= train['step_s']['median']
    assert train['losses_finite']
    assert s['memory']['peak_bytes'] > 0 and s['memory']['kind']
    assert s['inference']['img_per_s'] > 0


@needs_bf16
def test_compare_flags_fp32_vs_bf16_channels_last(tmp_path):
    rep = _bench(tmp_path, ROOT / DEMO_SEG, '--batch', 2, '--compare-flags',
                 '--amp bf16 --channels-last --fused --fast-attention')
    a, b = rep['setups']
    _check_setup(a, 2)
    _check_setup(b, 2)
    assert a['amp'] is None and b['amp'] == 'bf16'
    assert b['optim_wrapper'] == 'SegkitAmpOptimWrapper' and b['optimizer']['fused']
    assert b['fast_paths']['channels_last'] and b['applied']['channels_last_weights'] > 0
    assert b['applied']['fast_attention_modules'] > 0
    assert b['train']['amp_skipped_steps'] == 0
    cmp = rep['compare']
    assert (cmp['a'], cmp['b']) == ('A', 'B')
    assert cmp['train_img_per_s_ratio'] > 0 and cmp['memory_ratio'] > 0
    assert rep['env']['device'] == 'cpu' and rep['env']['torch'] == torch.__version__
    # FLOPs: counted once per setup, the same model -> the same count
    assert a['flops']['forward'] > 0 and a['flops']['train'] > a['flops']['forward']
    assert a['train']['achieved_tflops'] > 0


def test_compare_two_configs_and_compile(tmp_path):
    """--compare CONFIG2 (Mask2Former demo) with --compile backbone (aot_eager: dynamo
    + AOTAutograd, quick on CPU; inductor's C++ codegen takes minutes on 2 cores)."""
    rep = _bench(tmp_path, ROOT / DEMO_SEG, '--batch', 2, '--compare', ROOT / DEMO_M2F,
                 '--compile', 'backbone', '--compile-backend', 'aot_eager', '--no-flops')
    a, b = rep['setups']
    _check_setup(a, 2)
    _check_setup(b, 2)
    assert a['applied']['compiled'] == b['applied']['compiled'] == ['backbone']
    assert a['fast_paths']['compile_backend'] == 'aot_eager'
    assert 'flops' not in a
    assert rep['compare']['train_img_per_s_ratio'] > 0


def test_real_dataloader(tmp_path, demo_data):
    """Without --synthetic: the config's own train dataloader (mmseg's registry scope),
    0 workers allowed although the config keeps persistent workers."""
    from segkit.bench.train_bench import main
    out = tmp_path / 'bench.json'
    assert main([str(ROOT / DEMO_SEG), '--device', 'cpu', '--iters', '1', '--warmup', '1',
                 '--infer-iters', '0', '--no-flops', '--batch', '2', '--json', str(out),
                 '--cfg-options', f'train_dataloader.dataset.data_root={demo_data}',
                 'train_dataloader.num_workers=0']) == 0
    (s,) = json.loads(out.read_text())['setups']
    assert s['data'] == 'dataloader (0 workers)' and s['train']['losses_finite']


def test_find_max_batch_json(tmp_path):
    rep = _bench(tmp_path, ROOT / DEMO_SEG, '--batch', 1, '--find-max-batch',
                 '--max-batch', 4, '--no-flops', '--infer-iters', 0)
    fmb = rep['find_max_batch']
    assert fmb['max_batch'] == 4 and fmb['capped'] is True  # CPU: no OOM below the cap
    assert [t['batch'] for t in fmb['tries']] == [1, 2, 4]
    assert all(t['fits'] and t['peak_bytes'] > 0 for t in fmb['tries'])
    _check_setup(fmb['at_max'] | {'inference': {'img_per_s': 1}}, 4)


def test_find_max_batch_bisects_on_oom(monkeypatch):
    """Doubling then bisection; OOM caught (a fake step that fails above 11)."""
    from segkit.bench import train_bench

    def fake_run(setup, **kwargs):
        if setup.batch > 11:
            raise torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate')
        return {'memory': {'peak_bytes': setup.batch * 100},
                'train': {'img_per_s': float(setup.batch)}}
    monkeypatch.setattr(train_bench, 'run_setup', fake_run)
    out = train_bench.find_max_batch(train_bench.Setup('x'), device='cpu', start=2, cap=64,
                                     log=lambda *_: None)
    assert out['max_batch'] == 11 and not out['capped']
    assert [t['batch'] for t in out['tries']] == [2, 4, 8, 16, 12, 10, 11]
    limited = train_bench.find_max_batch(train_bench.Setup('x'), device='cpu', start=1,
                                         cap=64, mem_limit_bytes=550, log=lambda *_: None)
    assert limited['max_batch'] == 5
    assert train_bench.is_oom(RuntimeError('DefaultCPUAllocator: can\'t allocate memory'))
    assert not train_bench.is_oom(RuntimeError('shape mismatch'))


def test_cli_refuses_fp16_on_cpu_in_one_line():
    proc = run_py('tools/benchmark.py', DEMO_SEG, '--synthetic', '--device', 'cpu',
                  '--amp', 'fp16', check=False, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith('error: ')
    assert 'bf16' in proc.stderr and 'Traceback' not in proc.stderr


# ------------------------------------------------------------------ FLOPs


def test_flops_positive_and_plausible():
    from segkit.bench.flops import count_flops
    from segkit.bench.train_bench import quiet_mmengine
    from segkit.engine.config import load_config
    from segkit.bench.synthetic import build_model
    quiet_mmengine()
    cfg = load_config(str(ROOT / DEMO_SEG))
    model = build_model(cfg)
    small = count_flops(model, cfg, (64, 64))
    big = count_flops(model, cfg, (128, 128), train=False)
    assert small['forward'] > 0 and 'FlopCounterMode' in small['method']
    # convolutions/linears scale with pixels; attention over the reduced keys a bit more
    assert 3.5 < big['forward'] / small['forward'] < 4.6
    # backward = 2 matrix products per forward one (depthwise convs counted right)
    assert 2.7 < small['train'] / small['forward'] < 3.3
    # an independent anchor: SegFormer's paper gives MiT-B0 + its head 8.4 GMACs at
    # 512x512 (ADE20K); 1 MAC = 2 FLOPs here
    b0 = load_config('mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py')
    fl = count_flops(build_model(b0), b0, (512, 512), train=False)
    assert 0.85 < fl['forward'] / (2 * 8.4e9) < 1.15, fl['forward']


# ------------------------------------------------------------------ data benchmark


def test_data_benchmark_reports_per_transform_shares(tmp_path):
    from segkit.bench.data_bench import main
    out = tmp_path / 'data.json'
    stock = 'mmseg::mask2former/mask2former_swin-t_8xb2-160k_ade20k-512x512.py'
    ours = str(ROOT / 'configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512.py')
    assert main([stock, '--compare', ours, '--images', '4', '--repeats', '1',
                 '--synthetic', '--json', str(out), '--gpu-img-per-s', '30']) == 0
    rep = json.loads(out.read_text())
    assert rep['images'] == 4 and 'synthetic ADE20KDataset' in rep['source']
    for s in rep['setups']:
        names = [r['transform'] for r in s['transforms']]
        assert names[0] == 'LoadImageFromFile' and names[-1] == 'PackSegInputs'
        assert abs(sum(r['share'] for r in s['transforms']) - 1) < 1e-6
        assert s['slowest'] in names and s['img_per_s_per_worker'] > 0
        assert s['dropped'] == 0
        feed = s['gpu_feed']
        assert feed['needed_img_per_s_per_gpu'] == 30 and feed['workers_per_gpu'] == 4
    assert rep['compare']['b_vs_a_img_per_s'] > 0


def test_data_benchmark_voc_layout_and_workers(tmp_path):
    """VOC aug: ann_file list + 500x375 files; a 2-worker DataLoader pass too."""
    from segkit.bench.data_bench import run
    voc = str(ROOT / 'configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512.py')
    rep = run(voc, images=3, repeats=1, workers=2, synthetic=True,
              keep_dir=str(tmp_path / 'files'), log=lambda *_: None)
    assert (tmp_path / 'files/ImageSets/Segmentation/train_aug.txt').read_text().count(
        '\n') == 3
    import cv2
    img = cv2.imread(str(next((tmp_path / 'files/JPEGImages').glob('*.jpg'))))
    assert img.shape == (375, 500, 3)
    loader = rep['setups'][0]['loader']
    assert loader['workers'] == 2 and loader['img_per_s'] > 0


@pytest.mark.gpu
def test_gpu_benchmark_every_switch(tmp_path):
    """On CUDA: fp16 (GradScaler) vs bf16 + fused + channels-last + inductor compile."""
    from segkit.bench.train_bench import main
    out = tmp_path / 'gpu.json'
    assert main([str(ROOT / DEMO_SEG), '--synthetic', '--device', 'cuda', '--iters', '3',
                 '--warmup', '3', '--amp', 'fp16', '--fused', '--compare-flags',
                 '--amp bf16 --channels-last --compile --fast-attention --tf32',
                 '--json', str(out)]) == 0
    rep = json.loads(out.read_text())
    a, b = rep['setups']
    assert a['optimizer']['fused'] and a['amp'] == 'fp16' and b['amp'] == 'bf16'
    assert b['applied']['compiled'] == ['backbone', 'decode_head.forward']
    assert a['memory']['kind'].startswith('cuda') and rep['env']['gpu']
    assert a['train']['losses_finite'] and b['train']['losses_finite']
    assert b['train']['achieved_tflops'] > 0
