#!/usr/bin/env python
"""Train a base config and its variants on a budget, then compare them.

    python tools/sweep.py BASE_CONFIG --variants _focal _cw-ce \\
        --variant lr3e-3:optim_wrapper.optimizer.lr=3e-3 --fraction 0.25 \\
        [--gpus 0,1,2,3 --gpus-per-run 2] [--name NAME] [--cfg-options k=v ...]

Each variant trains in work_dirs/sweep_<name>/<variant>/ (tools/train.py, or
tools/dist_train.sh with --gpus-per-run > 1); a rerun skips finished variants and
resumes interrupted ones. The comparison (mIoU / mAcc and per-class IoU against the
base, curves overlaid, a verdict) goes to work_dirs/sweep_<name>/compare/.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from segkit.engine.cli import add_cfg_options, run_tool  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='the base config')
    p.add_argument('--variants', nargs='+', default=[], metavar='_SUFFIX',
                   help='shipped variants beside the base config: _cw-ce _focal _lovasz '
                   '_ce-lovasz _strong-aug _cosine ...')
    p.add_argument('--variant', action='append', default=[], metavar='NAME:K=V,K=V',
                   help='a named set of --cfg-options applied to the base (repeatable)')
    budget = p.add_mutually_exclusive_group()
    budget.add_argument('--epochs', type=int, help='train each run N epochs (schedule '
                        'stretched to it, as tools/train.py --max-epochs)')
    budget.add_argument('--fraction', type=float, help="train each run this fraction of "
                        "the base config's epochs (schedule stretched)")
    p.add_argument('--gpus', help='GPU ids to use, e.g. 0,1,2,3 (default: one run at a '
                   'time on the default device; CPU without CUDA)')
    p.add_argument('--gpus-per-run', type=int, default=1,
                   help='processes (GPUs) per run; runs go side by side on disjoint GPUs')
    p.add_argument('--name', help='sweep name (default: the base config stem)')
    p.add_argument('--root', default='work_dirs', help='where sweep_<name>/ goes '
                   '(default work_dirs)')
    add_cfg_options(p, example='train_dataloader.batch_size=4 (applied to every run)')
    p.add_argument('--compare-only', action='store_true',
                   help='train nothing: compare what the work dirs hold')
    args = p.parse_args()
    import time
    from pathlib import Path

    from segkit.engine import sweep as sw
    from segkit.engine.config import load_config
    base_cfg = load_config(args.config, args.cfg_options)
    variants = sw.plan_variants(args.config, args.variants, args.variant)
    epochs = sw.budget_epochs(base_cfg, args.epochs, args.fraction)
    slots = sw.gpu_slots(args.gpus, args.gpus_per_run)
    sweep_dir = Path(args.root) / f'sweep_{args.name or Path(args.config).stem}'
    common = sw.cfg_options_argv(args.cfg_options)
    t0 = time.time()
    failed = []
    if not args.compare_only:
        print(f'[sweep] {len(variants)} run(s) in {sweep_dir}: '
              + ', '.join(v.name for v in variants)
              + (f'; {epochs} epoch(s) each' if epochs else "; the configs' own schedules")
              + f'; {len(slots)} at a time', flush=True)
        outcomes = sw.run_sweep(variants, sweep_dir, epochs, slots, args.gpus_per_run,
                                common, say=lambda m: print(f'[sweep] {m}', flush=True))
        failed = [o for o in outcomes if o.status == 'failed']
        print(f'[sweep] training wall time {time.time() - t0:.0f}s', flush=True)
    comp, made = sw.compare_sweep(variants, sweep_dir)
    print(f'comparison: {made["markdown"]}  curves: {made.get("compare_miou", "-")}')
    print(f'tensorboard --logdir {made["tensorboard"]}')
    if failed:
        print(f'error: {len(failed)} run(s) failed: '
              + '; '.join(f'{o.variant.name} ({o.why}, log {o.work_dir / sw.LOG})'
                          for o in failed) + '; rerun the same command to resume them',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    run_tool(main)
