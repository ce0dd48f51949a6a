"""``make doctor``: :func:`probe` gathers facts (surviving a broken package); each ``check_*``
is a pure function of them giving one PASS / WARN / FAIL / SKIP row with a one-line fix."""
from __future__ import annotations

import dataclasses
import importlib
import json
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

from segkit.checks import FAIL, PASS, SKIP, WARN, Check, render
from segkit.engine.launch import gpu_request_error
from segkit.engine.preflight import config_checks
from segkit.errors import one_line
from segkit.facts import (MMCV_VERSION, PYTHON_MAX, PYTHON_MIN, SETUPTOOLS, TORCH_DEFAULT,
                          TORCH_MAX, TORCH_MIN)

DISK_WARN_GB, DISK_FAIL_GB = 20.0, 2.0


@dataclass
class Facts:
    """What :func:`probe` found. ``*_error`` fields hold a one-line error or None."""
    python: tuple = tuple(sys.version_info[:3])
    torch_version: Optional[str] = None
    torch_error: Optional[str] = None
    torch_cuda: Optional[str] = None  # torch.version.cuda; None = CPU build
    cuda_available: bool = False
    gpu_names: list = field(default_factory=list)
    smi_gpus: int = 0  # GPUs nvidia-smi lists (independent of torch)
    cuda_visible_devices: Optional[str] = None
    nvcc_version: Optional[str] = None  # e.g. '12.4'
    cuda_home: Optional[str] = None
    cuda_home_has_nvcc: bool = False
    mmcv_version: Optional[str] = None
    mmcv_windows: dict = field(default_factory=dict)  # pkg -> (min, max)
    mmcv_ext_error: Optional[str] = 'not probed'
    mmcv_cuda_kernel_error: Optional[str] = None  # None: passed or not probed
    mmcv_cuda_probed: bool = False
    op_paths: list = field(default_factory=list)  # ops_routing.Decision per op
    mmseg_error: Optional[str] = 'not probed'
    mmdet_error: Optional[str] = 'not probed'
    setuptools_version: Optional[str] = None
    pkg_resources_error: Optional[str] = 'not probed'
    tensorboard_error: Optional[str] = 'not probed'
    nccl_available: bool = False
    torchvision_error: Optional[str] = 'not probed'  # 'missing' if absent
    safe_loading_error: Optional[str] = 'not probed'
    work_dir: str = 'work_dirs'
    disk_free_gb: Optional[float] = None

    @property
    def gpu_count(self) -> int:
        return len(self.gpu_names)

    def replace(self, **kw) -> 'Facts':
        return dataclasses.replace(self, **kw)


def _try(fn: Callable[[], object]) -> Optional[str]:
    """None if ``fn()`` works, else its error in one line."""
    try:
        fn()
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - a probe must never crash doctor
        return one_line(err)
    return None


def _import(module: str) -> Optional[str]:
    return _try(lambda: importlib.import_module(module))


def _version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _stdout(*cmd: str) -> str:
    """``cmd``'s output, '' if it is not on PATH or fails to run."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):  # FileNotFoundError: not on PATH
        return ''


def mmcv_window(package: str) -> Optional[tuple]:
    """The mmcv window a package asserts at import, read from its source (importing would fail)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        return None
    text = Path(spec.origin).read_text(errors='replace')
    found = [re.search(rf"(?:MMCV_{end.upper()}|mmcv_{end}imum_version)\s*=\s*'([^']+)'", text)
             for end in ('min', 'max')]
    return (found[0][1], found[1][1]) if all(found) else None


def probe_tensorboard(logdir: str) -> None:
    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(log_dir=logdir)
    writer.add_scalar('doctor/check', 1.0, 0)
    writer.close()
    if not any(p.name.startswith('events.out.tfevents') for p in Path(logdir).iterdir()):
        raise RuntimeError(f'no event file written in {logdir}')


def probe_safe_loading() -> None:
    """A resume-style payload round-trips with weights_only."""
    import torch
    from mmengine.logging import HistoryBuffer

    from segkit.safe_load import safe_load  # registers the allowlist
    buf = HistoryBuffer()
    buf.update(1.5)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'probe.pth'
        torch.save({'message_hub': {'log_scalars': {'loss': buf}}}, path)
        loaded = safe_load(path)
    if loaded['message_hub']['log_scalars']['loss'].current() != 1.5:
        raise RuntimeError('HistoryBuffer did not round-trip')


def probe(work_dir: str = 'work_dirs') -> Facts:
    f = Facts(work_dir=work_dir, cuda_visible_devices=os.environ.get('CUDA_VISIBLE_DEVICES'))
    f.smi_gpus = sum(x.startswith('GPU ') for x in _stdout('nvidia-smi', '-L').splitlines())
    nvcc = re.search(r'release (\d+\.\d+)', _stdout('nvcc', '--version'))
    f.nvcc_version = nvcc and nvcc[1]
    f.cuda_home = os.environ.get('CUDA_HOME') or os.environ.get('CUDA_PATH')
    f.cuda_home_has_nvcc = bool(f.cuda_home) and (Path(f.cuda_home) / 'bin' / 'nvcc').exists()
    try:
        import torch
        f.torch_version = torch.__version__
        f.torch_cuda = torch.version.cuda
        f.cuda_available = torch.cuda.is_available()
        if f.cuda_available:
            f.gpu_names = [torch.cuda.get_device_name(i)
                           for i in range(torch.cuda.device_count())]
        import torch.distributed as dist
        f.nccl_available = dist.is_available() and dist.is_nccl_available()
    except BaseException as err:  # noqa: BLE001
        f.torch_error = one_line(err)
    f.mmcv_version = _version('mmcv') or _version('mmcv-lite')
    f.mmcv_windows = {pkg: w for pkg in ('mmseg', 'mmdet') if (w := mmcv_window(pkg))}
    f.mmcv_ext_error = _import('mmcv._ext')
    if f.cuda_available and f.mmcv_ext_error is None:
        f.mmcv_cuda_probed = True
        from segkit.plugins.models.ops_check import probe_msda_cuda
        f.mmcv_cuda_kernel_error = _try(probe_msda_cuda)
    f.mmseg_error = _import('mmseg.models')
    f.mmdet_error = _import('mmdet.models')
    if f.mmcv_ext_error is None and f.mmseg_error is None:
        try:  # which path each routed op takes on this machine's training device
            import segkit.plugins  # noqa: F401  (applies the routing patches)
            from segkit.plugins.models.ops_routing import paths
            f.op_paths = paths('cuda' if f.cuda_available else 'cpu')
        except Exception:  # noqa: BLE001 - doctor reports, never crashes
            f.op_paths = []
    f.setuptools_version = _version('setuptools')
    with warnings.catch_warnings():  # pkg_resources warns about its own removal
        warnings.simplefilter('ignore')
        f.pkg_resources_error = _import('pkg_resources')
    with tempfile.TemporaryDirectory(prefix='segkit-doctor-') as tb_dir:
        f.tensorboard_error = _try(lambda: probe_tensorboard(tb_dir))
    f.torchvision_error = ('missing' if importlib.util.find_spec('torchvision') is None
                           else _import('torchvision'))
    f.safe_loading_error = _try(probe_safe_loading)
    target = Path(work_dir)
    while not target.exists() and target != target.parent:
        target = target.parent
    f.disk_free_gb = shutil.disk_usage(target).free / 1e9
    return f


def _vt(v: str) -> tuple:
    """'2.13.0+cpu' -> (2, 13, 0); '2.0.0rc4' -> (2, 0, 0, -1, 4)."""
    m = re.match(r'(\d+(?:\.\d+)*)(?:rc(\d+))?', v.split('+')[0])
    if not m:
        return (0,)
    nums = tuple(int(x) for x in m.group(1).split('.'))
    return nums + (0,) * (3 - len(nums)) + ((-1, int(m.group(2))) if m.group(2) else ())


def _major(v: Optional[str]) -> Optional[int]:
    return int(v.split('.')[0]) if v else None


def _error_check(name: str, error: str, ok: Callable[[Facts], str], fix: str,
                 status: str = FAIL) -> Callable[[Facts], Check]:
    def check(f: Facts) -> Check:
        err = getattr(f, error)
        return Check(name, status, err, fix) if err else Check(name, PASS, ok(f))
    check.__name__ = f'check_{error[:-len("_error")]}'
    return check


def check_python(f: Facts) -> Check:
    v, lo, hi = '.'.join(map(str, f.python)), PYTHON_MIN, PYTHON_MAX
    if lo <= tuple(f.python[:2]) <= hi:
        return Check('Python', PASS, v)
    return Check('Python', FAIL, f'{v} is outside {lo[0]}.{lo[1]}-{hi[0]}.{hi[1]}',
                 'create an env with Python 3.11 (python3.11 -m venv .venv, or '
                 'conda create -n segkit python=3.11), then make install')


def check_torch(f: Facts) -> Check:
    if f.torch_error or not f.torch_version:
        return Check('torch', FAIL, f.torch_error or 'not installed',
                     f'make install (installs torch=={TORCH_DEFAULT})')
    if not (_vt(TORCH_MIN) <= _vt(f.torch_version) < _vt(TORCH_MAX)):
        return Check('torch', FAIL, f'{f.torch_version} is outside [{TORCH_MIN}, {TORCH_MAX})',
                     f'pip install torch=={TORCH_DEFAULT} (then make install rebuilds mmcv)')
    return Check('torch', PASS, f.torch_version)


def check_torch_cuda(f: Facts) -> Check:
    name, cuda = 'torch CUDA build / GPUs', f.torch_cuda
    if f.torch_error:
        return Check(name, SKIP, 'torch does not import')
    if cuda is None and f.smi_gpus:
        return Check(name, FAIL, f'torch is a CPU build but nvidia-smi lists {f.smi_gpus} GPU(s)',
                     f'pip uninstall -y torch && pip install torch=={TORCH_DEFAULT} '
                     '(PyPI default is the CUDA build), then make install')
    if cuda is None:
        return Check(name, PASS, 'CPU build, no GPU on this machine (training runs on CPU with gloo)')
    if not f.cuda_available and f.cuda_visible_devices is not None and f.smi_gpus:
        return Check(name, WARN, f'CUDA {cuda} build, but CUDA_VISIBLE_DEVICES='
                     f'{f.cuda_visible_devices!r} hides every GPU',
                     'unset CUDA_VISIBLE_DEVICES or list GPU ids')
    if not f.cuda_available and f.smi_gpus:
        return Check(name, FAIL, f'CUDA {cuda} build sees no GPU although nvidia-smi lists '
                     f'{f.smi_gpus}', 'the NVIDIA driver is older than this torch needs: install '
                     'a torch built for an older CUDA, or update the driver')
    if not f.cuda_available:
        return Check(name, WARN, f'CUDA {cuda} build, no GPU visible',
                     'fine for CPU tests; training needs a GPU machine')
    return Check(name, PASS, f'CUDA {cuda}, {f.gpu_count} GPU(s): '
                 + ', '.join(sorted(set(f.gpu_names))))


def check_visible_devices(f: Facts) -> Check:
    v, n = f.cuda_visible_devices, f.gpu_count
    err = gpu_request_error(max(1, n), n, v)
    if err or (v is not None and v.strip() in ('', '-1') and f.smi_gpus):
        return Check('CUDA_VISIBLE_DEVICES', WARN, err or f'{v!r} hides every GPU',
                     'unset CUDA_VISIBLE_DEVICES, or set it to the GPU ids to use')
    detail = f'{v!r}: {n} GPU(s) visible' if v is not None else (
        f'unset: all {n} GPU(s) visible' if n else 'unset')
    return Check('CUDA_VISIBLE_DEVICES', PASS, detail)


def check_nvcc(f: Facts) -> Check:
    name, nvcc, cuda = 'nvcc vs torch CUDA', f.nvcc_version, f.torch_cuda
    if not f.gpu_count:
        return Check(name, SKIP, 'no GPU: mmcv builds CPU ops only'
                     + (f' (nvcc {nvcc} found)' if nvcc else ''))
    if not nvcc:
        return Check(name, WARN, 'nvcc not found: mmcv cannot be rebuilt with CUDA kernels',
                     f'install the CUDA {cuda} toolkit (conda install -c nvidia cuda-nvcc={cuda}) '
                     'and set CUDA_HOME')
    if _major(nvcc) != _major(cuda):
        return Check(name, FAIL, f'nvcc {nvcc} but torch built for CUDA {cuda}: mmcv kernels '
                     f'will not load', f'put a CUDA {_major(cuda)}.x nvcc first on PATH / in '
                     'CUDA_HOME, or install the torch build for your toolkit')
    return Check(name, PASS, f'nvcc {nvcc}, torch CUDA {cuda}')


def check_cuda_home(f: Facts) -> Check:
    if not f.gpu_count:
        return Check('CUDA_HOME', SKIP, 'no GPU' + (f': {f.cuda_home}' if f.cuda_home else ''))
    if not f.cuda_home:
        return Check('CUDA_HOME', WARN, 'unset (torch guesses from nvcc on PATH)',
                     'export CUDA_HOME=/usr/local/cuda-<version> matching torch')
    if not f.cuda_home_has_nvcc:
        return Check('CUDA_HOME', FAIL, f'{f.cuda_home} has no bin/nvcc',
                     'point CUDA_HOME at a CUDA toolkit root (the folder holding bin/nvcc)')
    return Check('CUDA_HOME', PASS, f.cuda_home)


def check_mmcv_window(f: Facts) -> Check:
    if not f.mmcv_version:
        return Check('mmcv version', FAIL, 'mmcv not installed',
                     f'make install (builds mmcv=={MMCV_VERSION} with its ops)')
    bad = [f'{pkg} needs >={lo},<{hi}' for pkg, (lo, hi) in sorted(f.mmcv_windows.items())
           if not (_vt(lo) <= _vt(f.mmcv_version) < _vt(hi))]
    if bad:
        return Check('mmcv version', FAIL, f'mmcv {f.mmcv_version}: ' + '; '.join(bad),
                     f'pip uninstall -y mmcv && make install (builds mmcv=={MMCV_VERSION})')
    return Check('mmcv version', PASS, f'{f.mmcv_version} (inside the mmseg/mmdet window)')


def check_mmcv_cuda_kernels(f: Facts) -> Check:
    name = 'mmcv CUDA kernels'
    if not f.mmcv_cuda_probed:
        return Check(name, SKIP, 'no GPU' if not f.cuda_available else 'mmcv._ext missing')
    if f.mmcv_cuda_kernel_error:
        return Check(name, WARN, f.mmcv_cuda_kernel_error + ' (training takes the PyTorch paths '
                     "listed below)", "mmcv was built without CUDA kernels: an nvcc of torch's CUDA "
                     'major on PATH, then MMCV_REBUILD=1 make install (it sets FORCE_CUDA=1)')
    return Check(name, PASS, 'MultiScaleDeformableAttention ran on CUDA and matches the PyTorch '
                 'reference')


def op_path_rows(f: Facts) -> list[Check]:
    """One row per op that segkit routes."""
    if not f.op_paths:  # not probed: importing the routing would fail on a broken stack
        return []
    from segkit.plugins.models.ops_routing import FIX, OPS, PYTORCH

    def row(d) -> Check:
        name = f'op {d.op} on {d.device.split(":")[0]}'
        if d.path != PYTORCH:
            return Check(name, PASS, f'compiled kernel ({d.reason})')
        if d.device.startswith('cuda'):
            return Check(name, WARN, f'PyTorch path: {OPS[d.op].pytorch}; {OPS[d.op].cost}', FIX)
        # mmcv compiles neither op for CPU: the PyTorch path is the CPU path
        return Check(name, PASS, 'PyTorch path (mmcv has no CPU kernel)')
    return [row(d) for d in f.op_paths]


def check_setuptools(f: Facts) -> Check:
    name, detail = 'setuptools / pkg_resources', f'setuptools {f.setuptools_version}'
    if f.pkg_resources_error:
        return Check(name, FAIL, f'{detail}: {f.pkg_resources_error}',
                     f"pip install 'setuptools{SETUPTOOLS}' (mmcv's build and mmengine "
                     'import pkg_resources, removed in setuptools 81+)')
    return Check(name, PASS, detail)


def check_nccl(f: Facts) -> Check:
    if f.gpu_count < 2:
        return Check('NCCL', SKIP, f'{f.gpu_count} GPU(s): multi-GPU not possible'
                     + ('' if f.gpu_count else ' (CPU runs use gloo)'))
    if not f.nccl_available:
        return Check('NCCL', FAIL, 'torch.distributed has no NCCL backend',
                     'install a CUDA build of torch from PyPI (it bundles NCCL)')
    return Check('NCCL', PASS, f'available for {f.gpu_count} GPUs')


def check_torchvision(f: Facts) -> Check:
    if f.torchvision_error == 'missing':
        return Check('torchvision', WARN, 'not installed (segkit does not need it)',
                     'nothing to do; for your own use, install the build matching your '
                     'torch where one exists (PyPI has none for CPU torch)')
    return _torchvision_imports(f)


def check_disk(f: Facts) -> Check:
    free = f.disk_free_gb
    if free is None:
        return Check('free disk', SKIP, 'not probed')
    detail = f'{free:.1f} GB free for {f.work_dir}/'
    if free < DISK_FAIL_GB:
        return Check('free disk', FAIL, detail, 'free space or pass --work-dir on another '
                     'disk (a checkpoint of Mask2Former-Swin-T is ~0.6 GB)')
    if free < DISK_WARN_GB:
        return Check('free disk', WARN, detail, 'keep fewer checkpoints '
                     '(default_hooks.checkpoint.max_keep_ckpts) or free space')
    return Check('free disk', PASS, detail)


# the checks that fail (or warn) when the probe recorded an error: (name, Facts field,
# detail when it passed, fix)
check_mmcv_ext, check_mmseg, check_mmdet, check_tensorboard, check_safe_loading = (
    _error_check(*row) for row in [
        ('mmcv compiled ops (_ext)', 'mmcv_ext_error', lambda f: 'mmcv._ext imports',
         'mmcv was installed without ops (mmcv-lite or a broken build): '
         'pip uninstall -y mmcv mmcv-lite && make install'),
        ('mmsegmentation', 'mmseg_error', lambda f: f'{_version("mmsegmentation")} imports',
         'make install'),
        ('mmdet (Mask2Former)', 'mmdet_error', lambda f: f'{_version("mmdet")} imports',
         'make install (pins mmdet in requirements.txt; Mask2Former needs mmdet.models)'),
        ('TensorBoard writer', 'tensorboard_error', lambda f: 'SummaryWriter wrote an event file',
         'pip install tensorboard'),
        ('safe checkpoint loading', 'safe_loading_error',
         lambda f: 'resume checkpoints load with weights_only=True (segkit allowlist)',
         'reinstall segkit (make install); never set TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')])
_torchvision_imports = _error_check(
    'torchvision', 'torchvision_error', lambda f: f'{_version("torchvision")} imports',
    "pip uninstall -y torchvision (a torchvision that does not import stops mmengine's "
    'Runner at start-up), or install the one built for your torch', status=WARN)


CHECKS = [check_python, check_torch, check_torch_cuda, check_visible_devices,
          check_nvcc, check_cuda_home, check_mmcv_window, check_mmcv_ext,
          check_mmcv_cuda_kernels, check_mmseg, check_mmdet, check_setuptools,
          check_tensorboard, check_nccl, check_torchvision, check_safe_loading,
          check_disk]


def run_checks(f: Facts) -> list[Check]:
    rows = [check(f) for check in CHECKS]
    at = CHECKS.index(check_mmcv_cuda_kernels) + 1
    return rows[:at] + op_path_rows(f) + rows[at:]


def main(config: Optional[str] = None, work_dir: str = 'work_dirs',
         as_json: bool = False) -> int:
    rows = run_checks(probe(work_dir)) + (config_checks(config) if config else [])
    fails = sum(r.status == FAIL for r in rows)
    if as_json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))
    else:
        render(rows, 'segkit doctor')
        warns = sum(r.status == WARN for r in rows)
        print(f'{len(rows) - fails - warns} ok, {warns} warning(s), {fails} failure(s)')
    return 1 if fails else 0
