"""scripts/gpu_check.sh --dry-run (checks the wheelhouse, lists every step, runs
nothing heavy) and its record (segkit.bench.gpu_report)."""
import json
import subprocess

from conftest import ROOT


def _dry(tmp_path, *args):
    return subprocess.run(['bash', 'scripts/gpu_check.sh', '--dry-run', '--out',
                           str(tmp_path / 'out'), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def _wheelhouse(tmp_path, files):
    """A wheelhouse as make wheelhouse lays it out: the lock, then the files."""
    house = tmp_path / 'house'
    house.mkdir()
    (house / 'segkit-wheelhouse.txt').write_text(
        '# segkit wheelhouse\n# target: Python 3.12 manylinux_2_28_x86_64; excluded: torch\n'
        'mmengine==0.10.7\nmarkdown-it-py==4.3.0\n# mmcv: mmcv-2.1.0.tar.gz\n')
    for name in files:
        (house / name).write_bytes(b'')
    return house


def test_dry_run_checks_the_wheelhouse_and_lists_every_step(tmp_path):
    house = _wheelhouse(tmp_path, ['mmengine-0.10.7-py3-none-any.whl',
                                   'markdown_it_py-4.3.0-py3-none-any.whl',
                                   'mmcv-2.1.0.tar.gz'])
    proc = _dry(tmp_path, '--wheels', str(house), '--skip', 'hf')
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert '2 packages + mmcv-2.1.0.tar.gz, for Python 3.12 manylinux_2_28_x86_64' in out
    for step in ('install', 'doctor', 'tests', 'demo-segformer', 'demo-mask2former',
                 'bench-segformer', 'bench-mask2former', 'maxbatch-segformer',
                 'maxbatch-mask2former', 'ops-msda'):
        assert f'== {step}: ' in out, step
    assert '== hf-segformer: skipped' in out
    assert 'tools/dist_train.sh configs/demo/segformer_mit-tiny_1xb8-40e_demo-64x64.py 1' in out
    assert 'segformer_mit-b2_8xb2-160k_ade20k-512x512.py --batch 6 --compare' in out
    assert 'dry run: 13 steps listed, nothing run' in out
    assert not (tmp_path / 'out' / 'bench' / 'segformer.json').exists()


def test_dry_run_refuses_an_incomplete_wheelhouse(tmp_path):
    house = _wheelhouse(tmp_path, ['mmengine-0.10.7-py3-none-any.whl', 'mmcv-2.1.0.tar.gz'])
    proc = _dry(tmp_path, '--wheels', str(house))
    assert proc.returncode == 2
    assert proc.stderr.strip().count('\n') == 0
    assert 'lacks markdown-it-py==4.3.0' in proc.stderr and 'make wheelhouse' in proc.stderr
    proc = _dry(tmp_path, '--wheels', str(tmp_path / 'nowhere'))
    assert proc.returncode == 2 and 'make wheelhouse' in proc.stderr
    proc = _dry(tmp_path, '--wheels', str(house), '--skip', 'bogus')
    assert proc.returncode == 2 and 'install,doctor' in proc.stderr


def test_report_reads_steps_and_benchmarks(tmp_path):
    from segkit.bench.gpu_report import main
    log = tmp_path / 'logs' / 'demo-segformer.log'
    log.parent.mkdir()
    log.write_text('... mIoU: 41.20  mAcc: 50.0\n... mIoU: 55.30  mAcc: 61.0\n')
    (tmp_path / 'steps.tsv').write_text(f'install\t0\t190\t\ndemo-segformer\t0\t60\t{log}\n'
                                        'hf-segformer\tskipped\t0\t\n')
    bench = tmp_path / 'bench'
    bench.mkdir()
    gib = 2 ** 30

    def setup(img_s, peak, infer, tflops=None):
        return {'train': {'img_per_s': img_s, 'achieved_tflops': tflops},
                'memory': {'peak_bytes': peak * gib}, 'inference': {'img_per_s': infer}}
    (bench / 'segformer.json').write_text(json.dumps(
        {'setups': [setup(40.0, 20, 100.0), setup(100.0, 12, 120.0, 300.0)]}))
    (bench / 'segformer_max.json').write_text(json.dumps({'find_max_batch': {'max_batch': 48}}))
    assert main([str(tmp_path), '--total-s', '480']) == 0
    report = json.loads((tmp_path / 'gpu_check.json').read_text())
    seg = report['models']['segformer']
    assert seg['amp_over_stock'] == 2.5 and seg['mem_ratio'] == 0.6
    assert seg['targets']['amp >= 2.0x stock'] is True
    assert seg['targets']['>= 35% of bf16 peak'] is True  # 300 / 790
    assert seg['targets']['amp >= 1.2x HF'] is None  # no HF numbers: not judged
    assert report['steps'][1]['mIoU'] == 55.3
    text = (tmp_path / 'summary.md').read_text()
    assert '| demo-segformer | ok | 60 | mIoU 55.3 |' in text and '| 48 |' in text
