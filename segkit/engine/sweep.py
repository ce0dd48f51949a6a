"""The variant sweep behind ``tools/sweep.py``: a base config and its variants, each trained by
train.py / dist_train.sh in its own work dir on disjoint GPU subsets (or one after another), then
compared; a finished variant is skipped, one with checkpoints resumed."""
from __future__ import annotations

import json
import os
import re
import queue
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from segkit.analysis import compare as cmp
from segkit.analysis.advice import base_stem
from segkit.analysis.logs import load_run
from segkit.engine.launch import gpu_request_error, visible_gpus
from segkit.engine.resume import checkpoint_problem
from segkit.errors import SegkitError
from segkit.io import atomic_write

ROOT = Path(__file__).resolve().parents[2]
DONE = 'sweep_done.json'
LOG = 'sweep_train.log'
_NAME_OK = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.+-]*$')


@dataclass
class Variant:
    name: str
    config: str
    options: list = field(default_factory=list)  # key=value strings for --cfg-options


def cfg_options_argv(options: Optional[dict]) -> list:
    """A parsed --cfg-options dict back to key=value strings (DictAction's syntax)."""
    def val(v):
        if isinstance(v, (list, tuple)):
            inner = ','.join(val(x) for x in v)
            return f'[{inner}]' if isinstance(v, list) else f'({inner})'
        return str(v)
    return [f'{k}={val(v)}' for k, v in (options or {}).items()]


def suffix_variant(base: str, suffix: str) -> Variant:
    """``_focal`` -> the ``<stem>_focal.py`` beside the base config."""
    name, folder, stem = suffix.lstrip('_'), Path(base).parent, base_stem(Path(base).stem)
    cand = folder / f'{stem}_{name}.py'
    if not cand.is_file():
        have = sorted(q.stem[len(stem):] for q in folder.glob(f'{stem}_*.py'))
        raise SegkitError(f'variant {suffix}: no {cand} beside the base config (there: '
                          f'{", ".join(have) or "none"}); or name a '
                          'cfg-options set: --variant NAME:key=value,key=value')
    return Variant(name, str(cand))


def options_variant(base: str, spec: str) -> Variant:
    """``NAME:key=value,key=value`` -> a variant of the base config."""
    name, sep, rest = spec.partition(':')
    if not sep or not rest or '=' not in rest:
        raise SegkitError(f'--variant {spec}: write NAME:key=value[,key=value...] (e.g. '
                          'lr3e-3:optim_wrapper.optimizer.lr=3e-3)')
    # split at commas that start a new key=  (values may hold commas: [1,2])
    return Variant(name, base, re.split(r',(?=[A-Za-z_][\w.]*=)', rest))


def plan_variants(base: str, suffixes: list, specs: list) -> list:
    out = [Variant('base', base)]
    out += [suffix_variant(base, s) for s in suffixes]
    out += [options_variant(base, s) for s in specs]
    for v in out:
        if not _NAME_OK.match(v.name) or v.name == 'compare':  # compare/: the comparison
            raise SegkitError(f'variant name {v.name!r}: use letters, digits, . _ + -')
    dup = sorted(n for n, k in Counter(v.name for v in out).items() if k > 1)
    if dup:
        raise SegkitError(f'variant name(s) {", ".join(dup)} given twice: name each once')
    return out


def gpu_slots(gpus: Optional[str], per_run: int) -> list:
    """CUDA_VISIBLE_DEVICES of each slot ([None]: one slot, the default devices)."""
    if not gpus:
        return [None]
    ids = [g.strip() for g in gpus.split(',') if g.strip()]
    if not all(i.isdigit() for i in ids) or len(set(ids)) != len(ids):
        raise SegkitError(f'--gpus {gpus}: list distinct GPU ids, e.g. --gpus 0,1,2,3')
    if per_run < 1 or len(ids) % per_run:
        raise SegkitError(f'--gpus-per-run {per_run} does not divide the {len(ids)} GPU(s) '
                          f'of --gpus {gpus}')
    if not visible_gpus():
        raise SegkitError(f'--gpus {gpus}: torch sees no CUDA GPU here; leave --gpus out '
                          'to run the variants one after another on CPU (--gpus-per-run N: '
                          'N CPU processes each)')
    err = gpu_request_error(max(int(i) for i in ids) + 1)
    if err:
        raise SegkitError(f'--gpus {gpus}: {err}')
    return [','.join(ids[i:i + per_run]) for i in range(0, len(ids), per_run)]


def budget_epochs(base_cfg, epochs: Optional[int], fraction: Optional[float]) -> Optional[int]:
    """The epochs each run trains (None: the configs' own schedule); tools/sweep.py's
    parser allows one of ``epochs`` / ``fraction``."""
    if epochs is not None:
        if epochs < 1:
            raise SegkitError(f'--epochs {epochs}: at least 1')
        return epochs
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise SegkitError(f'--fraction {fraction}: between 0 and 1 (of the base schedule)')
        return max(1, round(fraction * base_cfg.train_cfg.max_epochs))
    return None


def finished(work_dir: Path, epochs: Optional[int]) -> Optional[str]:
    """Why the variant counts as finished, or None."""
    done = work_dir / DONE
    if done.is_file():
        try:
            if json.loads(done.read_text()).get('epochs') == epochs:
                return f'done marker {done.name}'
        except json.JSONDecodeError:
            pass
    last = work_dir / f'epoch_{epochs}.pth'
    if epochs is not None and last.is_file() and checkpoint_problem(last) is None:
        return f'its last checkpoint {last.name}'
    return None


def train_command(v: Variant, work_dir: Path, epochs: Optional[int], procs: int,
                  common: list, resume: bool) -> list:
    if procs > 1:
        cmd = ['bash', str(ROOT / 'tools' / 'dist_train.sh'), v.config, str(procs)]
    else:
        cmd = [sys.executable, str(ROOT / 'tools' / 'train.py'), v.config]
    cmd += ['--work-dir', str(work_dir)]
    cmd += ['--max-epochs', str(epochs)] if epochs is not None else []
    cmd += ['--resume'] if resume else []
    opts = [*common, *v.options]
    return cmd + (['--cfg-options', *opts] if opts else [])


@dataclass
class Outcome:
    variant: Variant
    work_dir: Path
    status: str  # 'skipped', 'trained', 'resumed', 'failed'
    why: str = ''
    seconds: float = 0.0


def run_variant(v: Variant, work_dir: Path, epochs: Optional[int], procs: int,
                common: list, cvd: Optional[str], say) -> Outcome:
    why = finished(work_dir, epochs)
    if why:
        say(f'{v.name}: finished ({why}), skipped')
        return Outcome(v, work_dir, 'skipped', why)
    resume = any(work_dir.glob('epoch_*.pth')) or (work_dir / 'last_checkpoint').is_file()
    cmd = train_command(v, work_dir, epochs, procs, common, resume)
    env = dict(os.environ, **({} if cvd is None else {'CUDA_VISIBLE_DEVICES': cvd}))
    work_dir.mkdir(parents=True, exist_ok=True)
    log = work_dir / LOG
    where = f'GPU {cvd}' if cvd is not None else 'default GPU' if visible_gpus() else 'CPU'
    say(f'{v.name}: {"resuming" if resume else "training"} on {where} -> {log}')
    t0 = time.time()
    with open(log, 'a') as f:
        f.write(f'\n$ {" ".join(cmd)}\n')
        f.flush()
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    dt = time.time() - t0
    if rc != 0:
        lines = [ln.strip()[:200] for ln in log.read_text(errors='replace').splitlines() if ln.strip()]
        tail = ([ln for ln in lines if ln.startswith('error:') or 'Error' in ln]
                or lines or ['(no output)'])[-1]  # the last error line
        say(f'{v.name}: FAILED (exit {rc}) after {dt:.0f}s: {tail}')
        return Outcome(v, work_dir, 'failed', f'exit {rc}: {tail}', dt)
    info = {'variant': v.name, 'config': v.config, 'options': v.options, 'epochs': epochs,
            'command': cmd, 'seconds': round(dt, 1),
            'finished': time.strftime('%Y-%m-%d %H:%M:%S')}
    atomic_write(str(work_dir / DONE),
                 lambda tmp: Path(tmp).write_text(json.dumps(info, indent=1) + '\n'))
    say(f'{v.name}: done in {dt:.0f}s')
    return Outcome(v, work_dir, 'resumed' if resume else 'trained', seconds=dt)


def run_sweep(variants: list, sweep_dir: Path, epochs: Optional[int], slots: list,
              procs: int, common: list, say=print) -> list:
    """Train (skip, resume) every variant; an Outcome per variant, in their order."""
    free = queue.SimpleQueue()  # the slots not in use
    for slot in slots:
        free.put(slot)

    def one(v):
        cvd = free.get()
        try:
            return run_variant(v, sweep_dir / v.name, epochs, procs, common, cvd, say)
        finally:
            free.put(cvd)

    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        return list(pool.map(one, variants))


def compare_sweep(variants: list, sweep_dir: Path, console=None):
    """Compare the variants that logged (base first) into ``sweep_dir/compare/`` and print it."""
    named = []
    for v in variants:
        try:
            named.append((v.name, load_run(sweep_dir / v.name)))
        except SegkitError as err:
            print(f'[sweep] {v.name}: left out of the comparison ({err})')
    if not named or named[0][0] != 'base':
        raise SegkitError(f'the base run in {sweep_dir / "base"} has no logs: nothing to '
                          'compare against (rerun the sweep)')
    comp = cmp.compare(named)
    made = cmp.write(comp, sweep_dir / 'compare')
    cmp.print_comparison(comp, console)
    return comp, made
