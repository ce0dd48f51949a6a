"""``scripts/gpu_check.sh``'s record: its steps (steps.tsv: name, rc, seconds, log)
and benchmark JSONs (bench/) into one ``gpu_check.json`` and a readable
``summary.md``, with the issue's targets checked where the numbers exist.

    python -m segkit.bench.gpu_report RESULTS_DIR [--total-s N]
"""
from __future__ import annotations

import argparse
import json
import operator
import re
from pathlib import Path

from segkit.bench import write_json
from segkit.io import atomic_write_bytes

H200_BF16_PEAK_TFLOPS = 790.0  # measured dense bf16 matmul on this workplace's H200
TARGETS = {'amp_over_stock': 2.0, 'mem_ratio_max': 1.0, 'over_hf': 1.2, 'mfu': 0.35}


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_steps(results: Path) -> list:
    steps = []
    for line in (results / 'steps.tsv').read_text().splitlines():
        name, rc, secs, log = (line.split('\t') + [''] * 4)[:4]
        step = {'name': name, 'status': rc if not rc.lstrip('-').isdigit() else
                ('ok' if rc == '0' else f'failed (rc {rc})'), 'seconds': int(secs or 0),
                'log': log}
        if name.startswith('demo-') and log and Path(log).is_file():
            miou = re.findall(r'mIoU: *([0-9.]+)', Path(log).read_text(errors='replace'))
            step['mIoU'] = float(miou[-1]) if miou else None
        steps.append(step)
    return steps


FIELDS = {  # a model's row: the bench JSON ({} = the model) and the keys into it
    'stock_img_s': ('{}', 'setups', 0, 'train', 'img_per_s'),
    'amp_img_s': ('{}', 'setups', 1, 'train', 'img_per_s'),
    'stock_peak_gib': ('{}', 'setups', 0, 'memory', 'peak_bytes'),
    'amp_peak_gib': ('{}', 'setups', 1, 'memory', 'peak_bytes'),
    'stock_infer_img_s': ('{}', 'setups', 0, 'inference', 'img_per_s'),
    'amp_infer_img_s': ('{}', 'setups', 1, 'inference', 'img_per_s'),
    'amp_tflops': ('{}', 'setups', 1, 'train', 'achieved_tflops'),
    'hf_img_s': ('hf_{}', 'train', 'img_per_s'),
    'hf_peak_gib': ('hf_{}', 'memory', 'peak_bytes'),
    'amp_max_batch': ('{}_max', 'find_max_batch', 'max_batch')}
RATIOS = {'amp_over_stock': ('amp_img_s', 'stock_img_s'),
          'mem_ratio': ('amp_peak_gib', 'stock_peak_gib'),
          'infer_ratio': ('amp_infer_img_s', 'stock_infer_img_s'),
          'amp_over_hf': ('amp_img_s', 'hf_img_s')}
VERDICTS = {'amp >= 2.0x stock': ('amp_over_stock', operator.ge, TARGETS['amp_over_stock']),
            'peak memory <= stock': ('mem_ratio', operator.le, TARGETS['mem_ratio_max']),
            'amp >= 1.2x HF': ('amp_over_hf', operator.ge, TARGETS['over_hf']),
            'inference >= stock': ('infer_ratio', operator.ge, 1.0),
            '>= 35% of bf16 peak': ('mfu', operator.ge, TARGETS['mfu'])}


def _get(d, *keys):
    for k in keys:
        if isinstance(k, int):
            d = d[k] if isinstance(d, list) and k < len(d) else None
        else:
            d = d.get(k) if isinstance(d, dict) else None
    return d


def model_rows(bench: Path) -> dict:
    out = {}
    for model in ('segformer', 'mask2former'):
        row = {}
        for field, (name, *keys) in FIELDS.items():
            value = _get(_load(bench / f'{name.format(model)}.json'), *keys)
            row[field] = ((value or 0) / 2**30 or None) if field.endswith('_gib') else value
        for field, (a, b) in RATIOS.items():
            row[field] = row[a] / row[b] if row[a] and row[b] else None
        row['mfu'] = row['amp_tflops'] / H200_BF16_PEAK_TFLOPS if row['amp_tflops'] else None
        row['targets'] = {name: None if row[key] is None else bool(meets(row[key], bound))
                          for name, (key, meets, bound) in VERDICTS.items()}
        out[model] = row
    return out


def _f(x, fmt='{:.2f}'):
    return '-' if x is None else fmt.format(x)


def summary_md(report: dict) -> str:
    lines = ['# segkit GPU check', '', f"total {report['total_s']} s", '',
             '| step | status | s | note |', '| --- | --- | --- | --- |']
    for s in report['steps']:
        note = f"mIoU {s['mIoU']}" if s.get('mIoU') is not None else ''
        lines.append(f"| {s['name']} | {s['status']} | {s['seconds']} | {note} |")
    lines += ['', '| model | stock img/s | _amp img/s | x | peak GiB stock/amp | infer x | '
              'HF img/s | amp/HF | TFLOP/s (MFU) | max batch |',
              '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for model, r in report['models'].items():
        lines.append(
            f"| {model} | {_f(r['stock_img_s'])} | {_f(r['amp_img_s'])} | "
            f"{_f(r['amp_over_stock'])} | {_f(r['stock_peak_gib'])}/{_f(r['amp_peak_gib'])} | "
            f"{_f(r['infer_ratio'])} | {_f(r['hf_img_s'])} | {_f(r['amp_over_hf'])} | "
            f"{_f(r['amp_tflops'], '{:.0f}')} ({_f(r['mfu'], '{:.0%}')}) | "
            f"{_f(r['amp_max_batch'], '{}')} |")
    lines.append('')
    for model, r in report['models'].items():
        marks = ', '.join(f"{k}: {'yes' if ok else 'NO'}" for k, ok in
                          r['targets'].items() if ok is not None)
        lines.append(f'- {model} targets: {marks or "no numbers"}')
    ops = report.get('ops_msda') or {}
    if ops:
        lines.append(f"- deformable attention fwd+bwd (batch {ops.get('batch')}, "
                     f"{ops.get('size')}px): PyTorch path {_f(ops.get('pytorch_ms'))} ms, "
                     f"kernel {_f(ops.get('kernel_ms'))} ms")
    return '\n'.join(lines) + '\n'


def build(results: Path, total_s: int = 0) -> dict:
    bench = results / 'bench'
    return {'total_s': total_s, 'steps': read_steps(results), 'models': model_rows(bench),
            'ops_msda': _load(bench / 'ops_msda.json'),
            'bench': {path.stem: _load(path) for path in sorted(bench.glob('*.json'))}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('results')
    p.add_argument('--total-s', type=int, default=0)
    args = p.parse_args(argv)
    report = build(Path(args.results), args.total_s)
    write_json(str(Path(args.results) / 'gpu_check.json'), report)
    text = summary_md(report)
    atomic_write_bytes(str(Path(args.results) / 'summary.md'), text.encode())
    print(text)
    return 0


if __name__ == '__main__':
    from segkit.engine.cli import run_tool
    run_tool(main)
