"""make wheelhouse, then an offline make install into a fresh virtualenv.

The fresh env plays the GPU machine: a .pth gives it what that machine already has
(scripts/gpu_check.have: torch, numpy, opencv, scipy, ...) from this test env's
site-packages, so the wheelhouse leaves those out (EXCLUDE) and only segkit's own
stack (mmengine, mmseg, mmdet, mmcv, ...) comes from it. The install runs
with the index unreachable (PIP_INDEX_URL=http://127.0.0.1:9/, and install.sh passes
--no-index). Building the wheelhouse needs the package index (like make install).
"""
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import ROOT

# what the GPU machine already has (scripts/gpu_check.have), plus torch's own needs
HAVE_FILE = ROOT / 'scripts' / 'gpu_check.have'
TORCH_NEEDS = ('filelock', 'sympy', 'mpmath', 'networkx', 'jinja2', 'fsspec', 'opencv-python')


def _norm(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def link_have(have: Path, names: set) -> None:
    """Symlink every top-level file/folder of this env's distributions in ``names``."""
    from importlib import metadata
    for dist in metadata.distributions():
        if _norm(dist.metadata['Name']) not in names:
            continue
        for top in {Path(str(f)).parts[0] for f in dist.files or ()}:
            src = Path(dist.locate_file(top))
            if src.exists() and not top.startswith('..') and not (have / top).exists():
                (have / top).symlink_to(src)


def _run(cmd, env, timeout=1200):
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f'{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_wheelhouse_then_offline_install(tmp_path):
    shared_wheels = ROOT.parent / 'shared' / 'wheels'
    base = dict(os.environ)
    for key in ('VIRTUAL_ENV', 'CONDA_PREFIX', 'PYTHON', 'PYTHONPATH', 'SEGKIT_WHEELS'):
        base.pop(key, None)
    house = tmp_path / 'house'
    have_names = [n for line in HAVE_FILE.read_text().splitlines()
                  if not line.startswith('#') for n in line.split()]
    env = dict(base, WHEELHOUSE=str(house), EXCLUDE=' '.join(have_names),
               PYTHON=sys.executable)
    if shared_wheels.is_dir():  # CI's prebuilt mmcv for this Python and torch
        env['SEGKIT_WHEELS'] = str(shared_wheels)
    out = _run(['bash', 'scripts/wheelhouse.sh'], env)
    assert 'done:' in out
    files = sorted(p.name for p in house.iterdir())
    lock = (house / 'segkit-wheelhouse.txt').read_text()
    names = [line.split('==')[0] for line in lock.splitlines() if '==' in line]
    for pkg in ('mmengine', 'mmsegmentation', 'mmdet', 'setuptools', 'addict'):
        assert pkg in names
    for pkg in ('torch', 'numpy', 'opencv-python', 'opencv-python-headless', 'scipy'):
        assert pkg not in names
    assert not [f for f in files if f.lower().startswith(('torch-', 'numpy-', 'opencv'))]
    assert any(f.startswith('mmcv-2.1.0') for f in files)

    # a fresh env that already has torch, numpy, opencv (linked, not copied)
    have = tmp_path / 'have'
    have.mkdir()
    link_have(have, {_norm(n) for n in have_names + list(TORCH_NEEDS)})
    env_dir = tmp_path / 'env'
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / 'bin' / 'python'
    target_site = subprocess.check_output(
        [py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], text=True).strip()
    Path(target_site, 'target_has.pth').write_text(f'{have}\n')
    env = dict(base, VIRTUAL_ENV=str(env_dir), SEGKIT_WHEELS=str(house),
               PIP_INDEX_URL='http://127.0.0.1:9/', PIP_RETRIES='0', PIP_TIMEOUT='2',
               SEGKIT_CACHE=str(tmp_path / 'cache'))
    out = _run(['bash', 'scripts/install.sh'], env)
    assert 'offline: installing from the wheelhouse' in out
    assert 'done: torch' in out
    listed = subprocess.check_output([py, '-m', 'pip', 'list', '--path', target_site,
                                      '--format', 'freeze'], text=True).lower()
    assert 'mmsegmentation==1.2.2' in listed and 'mmcv==2.1.0' in listed
    assert 'torch==' not in listed and 'numpy==' not in listed and 'opencv' not in listed
    _run([py, '-c', 'import segkit.plugins, mmcv._ext, mmseg.models, mmdet.models, cv2, torch'],
         env)
