"""``make demo``: the whole workflow on the built-in dataset, with the real tools.

Generates ``data/demo`` if missing, trains the demo config with ``tools/train.py``,
tests the best checkpoint with ``tools/test.py``, then prints where everything is and
checks the mIoU against the demo's documented bar.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from segkit.engine.cli import shell_command
from segkit.errors import SegkitError

ROOT = Path(__file__).resolve().parents[1]

# mIoU bars on the demo val split (120 images). A pipeline that learns nothing
# predicts background everywhere: 71 % of the pixels, IoU 71 / 5 classes = 14.3
# (what epoch 1 scores). The measured mIoU and times are in the README's demo table.
DEMOS = {
    'segformer': dict(config='configs/demo/segformer_mit-tiny_1xb8-40e_demo-64x64.py', bar=35.0),
    'mask2former': dict(config='configs/demo/mask2former_mit-tiny_1xb8-20e_demo-64x64.py',
                        bar=25.0),
}


def _run(cmd: list, cwd: Path) -> None:
    print(f'\n$ {" ".join(shlex.quote(str(c)) for c in cmd)}', flush=True)
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd)
    if proc.returncode != 0:
        raise SegkitError(f'{Path(cmd[1]).name} exited with {proc.returncode} (its '
                          'output is above); check the machine with: make doctor')


def fresh_work_dir(stem: str, root: Path) -> Path:
    """work_dirs/<stem>, or a new sibling if an earlier demo run is there (kept)."""
    base = root / 'work_dirs' / stem
    if not base.exists() or not any(base.glob('*.pth')):
        return base
    return base.with_name(f'{stem}-{time.strftime("%Y%m%d-%H%M%S")}')


def run_demo(model: str = 'segformer', epochs: int | None = None,
             python: str = sys.executable, root: Path = ROOT, out_root: Path | None = None,
             data_sizes: dict | None = None) -> int:
    """Run the demo; ``out_root`` (default: the repo) holds data/demo and work_dirs/.
    Returns 0 if the test mIoU clears the demo's bar, else 1."""
    if model not in DEMOS:
        raise SegkitError(f'unknown demo model {model!r}: use one of {", ".join(DEMOS)}')
    config, bar = DEMOS[model]['config'], DEMOS[model]['bar']
    start = time.time()
    from segkit.data.shapes import generate
    data = Path(out_root or root) / 'data' / 'demo'
    print(f'[demo] dataset: {data} (generated if missing)', flush=True)
    meta = generate(data, sizes=data_sizes)
    print(f"[demo] {sum(meta['sizes'].values())} images, classes: {', '.join(meta['classes'])}")
    work_dir = fresh_work_dir(Path(config).stem, Path(out_root or root))
    opts = [f'{split}_dataloader.dataset.data_root={data}' for split in ('train', 'val', 'test')]
    extra = ['--cfg-options', *opts] + (['--max-epochs', str(epochs)] if epochs else [])
    _run([python, 'tools/train.py', config, '--work-dir', work_dir, *extra], root)
    best = sorted(work_dir.glob('best_mIoU_epoch_*.pth'))
    if not best:
        raise SegkitError(f'no best_mIoU checkpoint in {work_dir}: training did not '
                          'validate (see the log above)')
    logs = work_dir / 'tensorboard'  # the run's one TensorBoard run (train + resumes)
    metrics_json = work_dir / 'demo_test_metrics.json'
    _run([python, 'tools/test.py', config, best[-1], '--work-dir', work_dir,
          '--metrics-json', metrics_json, '--cfg-options', opts[2]], root)
    miou = json.loads(metrics_json.read_text())['metrics'].get('mIoU', 0.0)
    print('\n[demo] ------------------------------------------------------------')
    print(f'[demo] {model}: mIoU {miou:.2f} on the demo val split, '
          f'{(time.time() - start) / 60:.1f} min')
    where = {'work dir': work_dir, 'best checkpoint': best[-1], 'metrics JSON': metrics_json,
             'TensorBoard logs': logs if logs.is_dir() else None,
             'open TensorBoard': shell_command(['scripts/tensorboard.sh', work_dir])
             + '   (then http://localhost:6006)',
             'read the run': shell_command(['python', 'tools/analyze_run.py', work_dir])}
    for label, value in where.items():
        if value is not None:
            print(f'[demo] {label + ":":18}{value}')
    if miou < bar:
        print(f'[demo] FAIL: mIoU {miou:.2f} is below the demo bar {bar}: the pipeline is '
              'not learning; run make doctor', file=sys.stderr)
        return 1
    print(f'[demo] PASS: mIoU {miou:.2f} clears the demo bar ({bar})')
    return 0
