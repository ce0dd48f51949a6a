"""``scripts/gpu_check.sh``'s record: its steps (steps.tsv: name, rc, seconds, log)
and benchmark JSONs (bench/) into one ``gpu_check.json`` and a readable
``summary.md``, with the issue's targets checked where the numbers exist.

    python -m segkit.bench.gpu_report RESULTS_DIR [--total-s N]
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

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


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def model_rows(bench: Path) -> dict:
    out = {}
    for model in ('segformer', 'mask2former'):
        rep = _load(bench / f'{model}.json') or {}
        setups = rep.get('setups') or [{}, {}]
        stock, ours = (setups + [{}, {}])[:2]
        hf = _load(bench / f'hf_{model}.json') or {}
        mx = _load(bench / f'{model}_max.json') or {}
        row = {'stock_img_s': _get(stock, 'train', 'img_per_s'),
               'amp_img_s': _get(ours, 'train', 'img_per_s'),
               'stock_peak_gib': (_get(stock, 'memory', 'peak_bytes') or 0) / 2**30 or None,
               'amp_peak_gib': (_get(ours, 'memory', 'peak_bytes') or 0) / 2**30 or None,
               'stock_infer_img_s': _get(stock, 'inference', 'img_per_s'),
               'amp_infer_img_s': _get(ours, 'inference', 'img_per_s'),
               'amp_tflops': _get(ours, 'train', 'achieved_tflops'),
               'hf_img_s': _get(hf, 'train', 'img_per_s'),
               'hf_peak_gib': (_get(hf, 'memory', 'peak_bytes') or 0) / 2**30 or None,
               'amp_max_batch': _get(mx, 'find_max_batch', 'max_batch')}

        def ratio(a, b):
            return row[a] / row[b] if row[a] and row[b] else None
        row['amp_over_stock'] = ratio('amp_img_s', 'stock_img_s')
        row['mem_ratio'] = ratio('amp_peak_gib', 'stock_peak_gib')
        row['infer_ratio'] = ratio('amp_infer_img_s', 'stock_infer_img_s')
        row['amp_over_hf'] = ratio('amp_img_s', 'hf_img_s')
        row['mfu'] = row['amp_tflops'] / H200_BF16_PEAK_TFLOPS if row['amp_tflops'] else None
        out[model] = row
    return out


def verdicts(row: dict) -> dict:
    def v(x, ok):
        return None if x is None else bool(ok(x))
    return {'amp >= 2.0x stock': v(row['amp_over_stock'], lambda x: x >= TARGETS['amp_over_stock']),
            'peak memory <= stock': v(row['mem_ratio'], lambda x: x <= TARGETS['mem_ratio_max']),
            'amp >= 1.2x HF': v(row['amp_over_hf'], lambda x: x >= TARGETS['over_hf']),
            'inference >= stock': v(row['infer_ratio'], lambda x: x >= 1.0),
            '>= 35% of bf16 peak': v(row['mfu'], lambda x: x >= TARGETS['mfu'])}


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
                          verdicts(r).items() if ok is not None)
        lines.append(f'- {model} targets: {marks or "no numbers"}')
    ops = report.get('ops_msda') or {}
    if ops:
        lines.append(f"- deformable attention fwd+bwd (batch {ops.get('batch')}, "
                     f"{ops.get('size')}px): PyTorch path {_f(ops.get('pytorch_ms'))} ms, "
                     f"kernel {_f(ops.get('kernel_ms'))} ms")
    return '\n'.join(lines) + '\n'


def build(results: Path, total_s: int = 0) -> dict:
    bench = results / 'bench'
    report = {'total_s': total_s, 'steps': read_steps(results), 'models': model_rows(bench),
              'ops_msda': _load(bench / 'ops_msda.json'), 'bench': {}}
    for path in sorted(bench.glob('*.json')):
        report['bench'][path.stem] = _load(path)
    for model, row in report['models'].items():
        row['targets'] = verdicts(row)
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('results')
    p.add_argument('--total-s', type=int, default=0)
    args = p.parse_args(argv)
    from segkit.io import atomic_write_bytes
    results = Path(args.results)
    report = build(results, args.total_s)
    atomic_write_bytes(str(results / 'gpu_check.json'), json.dumps(report, indent=1).encode())
    text = summary_md(report)
    atomic_write_bytes(str(results / 'summary.md'), text.encode())
    print(text)
    return 0


if __name__ == '__main__':
    from segkit.engine.cli import run_tool
    run_tool(main)
