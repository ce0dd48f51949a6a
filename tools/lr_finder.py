#!/usr/bin/env python
"""LR range test: train the config's model, data and optimizer for a few hundred
iterations with the LR growing exponentially, plot the smoothed loss against the LR
and suggest one (segkit/engine/lr_finder.py says how).

    python tools/lr_finder.py CONFIG [--start-lr A --end-lr B --iters N] [--out DIR]
    torchrun --nproc_per_node 2 tools/lr_finder.py CONFIG --launcher pytorch

Writes DIR/lr_finder.json (the curve) and DIR/lr_finder.png; DIR defaults to
work_dirs/lr_finder/<config stem>/. Saves no checkpoint and writes nothing into the
config's work dir.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import segkit  # noqa: E402,F401  (safe checkpoint loading before anything loads)
from segkit.engine.cli import add_cfg_options, run_tool  # noqa: E402


def main() -> int:
    from segkit.engine import lr_finder as lf
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config file')
    p.add_argument('--start-lr', type=float, help='first LR (default: config lr / '
                   f'{1 / lf.START_FACTOR:g})')
    p.add_argument('--end-lr', type=float, help='last LR (default: config lr x '
                   f'{lf.END_FACTOR:g})')
    p.add_argument('--iters', type=int, default=lf.DEFAULT_ITERS,
                   help=f'iterations of the sweep (default {lf.DEFAULT_ITERS})')
    p.add_argument('--out', help='where lr_finder.json / .png go (default: '
                   'work_dirs/lr_finder/<config stem>/)')
    add_cfg_options(p)
    p.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                   help='pytorch under torchrun (the loss is averaged over the processes)')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    from pathlib import Path

    from segkit.engine import dist as sk_dist
    from segkit.engine.flows import prepare_config
    # train.py's config preparation; its work_dir is only named, never written
    cfg = prepare_config(argparse.Namespace(config=args.config, cfg_options=args.cfg_options,
                                            work_dir=None))

    def say(msg):
        if sk_dist.rank() == 0:
            print(msg, flush=True)

    curve = lf.run_range_test(cfg, args.config, args.start_lr, args.end_lr, args.iters,
                              args.launcher, progress=lambda m: say(f'[lr_finder] {m}'))
    if sk_dist.rank() != 0:
        return 0
    say(f'[lr_finder] {len(curve.lr)} steps in {curve.seconds:.0f}s (total batch '
        f'{curve.total_batch} = {curve.world_size} x {curve.batch_per_process}), lr '
        f'{curve.start_lr:.3g} -> {curve.lr[-1] if curve.lr else curve.start_lr:.3g}; '
        f'{curve.stopped}')
    js, png = lf.write_outputs(curve, Path(args.out or lf.default_out_dir(args.config)))
    lines = lf.advice_lines(curve, cfg)
    if not lines:
        say('no suggestion: the smoothed loss never fell before it diverged (lower '
            '--start-lr, or more --iters)')
    for line in lines:
        say(line)
    say(f'curve: {js}\nplot:  {png}')
    return 0 if lines else 1


if __name__ == '__main__':
    run_tool(main)
