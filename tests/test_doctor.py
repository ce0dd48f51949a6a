"""doctor: every check passes on a healthy machine and fails on a simulated broken
one; the real tool exits 0 here and 1 when the stack is broken."""
import json
import os

import pytest

from conftest import ROOT, run_py
from segkit import doctor as d

# a healthy multi-GPU server, as facts
GPU_OK = d.Facts(
    python=(3, 11, 7), torch_version='2.13.0+cu128', torch_cuda='12.8', cuda_available=True,
    gpu_names=['NVIDIA A100'] * 3, smi_gpus=3, cuda_visible_devices=None,
    nvcc_version='12.8', cuda_home='/usr/local/cuda-12.8', cuda_home_has_nvcc=True,
    mmcv_version='2.1.0',
    mmcv_windows={'mmseg': ('2.0.0rc4', '2.2.0'), 'mmdet': ('2.0.0rc4', '2.2.0')},
    mmcv_ext_error=None, mmcv_cuda_probed=True, mmcv_cuda_kernel_error=None,
    mmseg_error=None, mmdet_error=None, setuptools_version='80.9.0',
    pkg_resources_error=None, tensorboard_error=None, nccl_available=True,
    torchvision_error=None, safe_loading_error=None, disk_free_gb=500.0)

# (check, facts changed from GPU_OK, expected status, words in the detail)
BROKEN = [
    (d.check_python, dict(python=(3, 8, 10)), d.FAIL, '3.8.10'),
    (d.check_python, dict(python=(3, 13, 0)), d.FAIL, '3.13.0'),
    (d.check_torch, dict(torch_version='2.5.1'), d.FAIL, 'outside'),
    (d.check_torch, dict(torch_version=None, torch_error='ModuleNotFoundError: torch'),
     d.FAIL, 'torch'),
    (d.check_torch_cuda, dict(torch_cuda=None, cuda_available=False, gpu_names=[]),
     d.FAIL, 'CPU build'),
    (d.check_torch_cuda, dict(cuda_available=False, gpu_names=[]), d.FAIL, 'sees no GPU'),
    (d.check_visible_devices, dict(cuda_visible_devices='', gpu_names=[]), d.WARN, 'hides'),
    (d.check_nvcc, dict(nvcc_version='11.8'), d.FAIL, 'nvcc 11.8'),
    (d.check_nvcc, dict(nvcc_version=None), d.WARN, 'not found'),
    (d.check_cuda_home, dict(cuda_home='/opt/not-cuda', cuda_home_has_nvcc=False), d.FAIL,
     'bin/nvcc'),
    (d.check_cuda_home, dict(cuda_home=None), d.WARN, 'unset'),
    (d.check_mmcv_window, dict(mmcv_version='2.2.0'), d.FAIL, '<2.2.0'),
    (d.check_mmcv_window, dict(mmcv_version=None), d.FAIL, 'not installed'),
    (d.check_mmcv_ext, dict(mmcv_ext_error="ModuleNotFoundError: No module named 'mmcv._ext'"),
     d.FAIL, '_ext'),
    (d.check_mmcv_cuda_kernels, dict(
        mmcv_cuda_kernel_error='RuntimeError: ms_deform_attn_impl_forward: implementation '
        'for device cuda:0 not found.'), d.WARN, 'not found'),
    (d.check_mmseg, dict(mmseg_error='AssertionError: MMCV==2.2.0 is used but incompatible'),
     d.FAIL, 'incompatible'),
    (d.check_mmdet, dict(mmdet_error="ModuleNotFoundError: No module named 'mmdet'"),
     d.FAIL, 'mmdet'),
    (d.check_setuptools, dict(setuptools_version='82.0.0',
                              pkg_resources_error="No module named 'pkg_resources'"),
     d.FAIL, '82.0.0'),
    (d.check_tensorboard, dict(tensorboard_error='RuntimeError: no event file'), d.FAIL,
     'event'),
    (d.check_nccl, dict(nccl_available=False), d.FAIL, 'NCCL'),
    (d.check_torchvision, dict(torchvision_error='RuntimeError: operator torchvision::nms '
                               'does not exist'), d.WARN, 'nms'),
    (d.check_torchvision, dict(torchvision_error='missing'), d.WARN, 'not installed'),
    (d.check_safe_loading, dict(safe_loading_error='UnpicklingError: HistoryBuffer'),
     d.FAIL, 'HistoryBuffer'),
    (d.check_disk, dict(disk_free_gb=0.5), d.FAIL, '0.5 GB'),
    (d.check_disk, dict(disk_free_gb=8.0), d.WARN, '8.0 GB'),
]


def test_every_check_passes_on_a_healthy_gpu_machine():
    rows = d.run_checks(GPU_OK)
    assert len(rows) == len(d.CHECKS) == 17
    assert [r.name for r in rows if r.status != d.PASS] == []


@pytest.mark.parametrize('check,change,status,words', BROKEN,
                         ids=[f'{c.__name__}-{i}' for i, (c, *_) in enumerate(BROKEN)])
def test_check_flags_a_broken_machine(check, change, status, words):
    row = check(GPU_OK.replace(**change))
    assert row.status == status, row
    assert words in row.detail
    assert row.fix, 'every failure says how to fix it'


def test_every_check_has_a_failing_case():
    assert {c for c, *_ in BROKEN} == set(d.CHECKS)


def test_gpu_checks_skip_on_a_cpu_machine():
    cpu = GPU_OK.replace(torch_version='2.13.0+cpu', torch_cuda=None, cuda_available=False,
                         gpu_names=[], smi_gpus=0, mmcv_cuda_probed=False,
                         nccl_available=False, cuda_home=None, nvcc_version=None)
    rows = {r.name: r.status for r in d.run_checks(cpu)}
    assert rows['torch CUDA build / GPUs'] == d.PASS
    for name in ('nvcc vs torch CUDA', 'CUDA_HOME', 'mmcv CUDA kernels', 'NCCL'):
        assert rows[name] == d.SKIP
    assert d.FAIL not in rows.values()


def test_tensorboard_probe_fails_where_it_cannot_write(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a directory')
    with pytest.raises(Exception):
        d.probe_tensorboard(str(blocker / 'logs'))
    d.probe_tensorboard(str(tmp_path / 'logs'))  # and works where it can


def test_mmcv_window_read_from_installed_packages():
    assert d.mmcv_window('mmseg') == ('2.0.0rc4', '2.2.0')
    assert d.mmcv_window('mmdet') == ('2.0.0rc4', '2.2.0')


def test_doctor_tool_passes_on_this_machine():
    proc = run_py('tools/doctor.py', '--json')
    rows = json.loads(proc.stdout)
    assert len(rows) == 17 + 2  # + the path of each routed op (ops_routing)
    assert {'op msda on cpu', 'op sigmoid_focal_loss on cpu'} <= {r['name'] for r in rows}
    assert all(r['status'] in (d.PASS, d.WARN, d.SKIP) for r in rows), rows


def _fake_package(root, name, init, version=None):
    pkg = root / name
    pkg.mkdir()
    (pkg / '__init__.py').write_text(init)
    if version:
        info = root / f'{name}-{version}.dist-info'
        info.mkdir()
        (info / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')


def test_doctor_tool_fails_on_a_broken_stack(tmp_path):
    """Shadow real packages with broken ones: mmcv 2.2 (what `pip install mmcv` gives
    today), a setuptools without pkg_resources, a CUDA torchvision on CPU torch."""
    _fake_package(tmp_path, 'mmcv', "__version__ = '2.2.0'\n", version='2.2.0')
    _fake_package(tmp_path, 'pkg_resources',
                  "raise ImportError(\"No module named 'pkg_resources'\")\n")
    _fake_package(tmp_path, 'torchvision',
                  "raise RuntimeError('operator torchvision::nms does not exist')\n")
    env = {'PYTHONPATH': f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = run_py('tools/doctor.py', '--json', env=env, check=False)
    assert proc.returncode == 1
    rows = {r['name']: r for r in json.loads(proc.stdout)}
    assert rows['mmcv version']['status'] == d.FAIL and '2.2.0' in rows['mmcv version']['detail']
    assert rows['mmcv compiled ops (_ext)']['status'] == d.FAIL
    assert rows['mmsegmentation']['status'] == d.FAIL
    assert rows['setuptools / pkg_resources']['status'] == d.FAIL
    assert rows['torchvision']['status'] == d.WARN and 'nms' in rows['torchvision']['detail']


def test_doctor_config_reports_missing_data_and_weights(tmp_path):
    proc = run_py(ROOT / 'tools/doctor.py', '--json',
                  ROOT / 'configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512.py',
                  '--work-dir', tmp_path, check=False,
                  cwd=tmp_path)  # no data/ or checkpoints/ here
    assert proc.returncode == 1
    rows = json.loads(proc.stdout)
    fails = {r['name']: r for r in rows if r['status'] == d.FAIL}
    assert any(n.startswith('data train') for n in fails)
    pre = [r for n, r in fails.items() if n.startswith('pretrained')]
    assert pre and 'convert_weights.py swin' in pre[0]['fix']
