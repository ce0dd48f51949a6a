"""A :class:`~segkit.analysis.reading.Reading` in words (:func:`findings`), then what to
run next (:func:`next_steps`): a config's variants sit beside it as ``<stem>_<variant>.py``;
for a config that is not ours, those of other configs are named as examples."""
from __future__ import annotations

import math
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from segkit.analysis import reading as rd

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ('cw-ce', 'focal', 'lovasz', 'ce-lovasz', 'strong-aug', 'cosine', 'aux-head')
_BACKBONE = re.compile(r'(mit-b|swin-)([0-9a-z])(?=_)')
_SIZES = {'swin-': 'tsbl'}  # swin-t < swin-s < swin-b < swin-l; mit-b0 < ... < b5
# Heads that classify queries (then masks): the pixel losses of the focal / Lovasz
# variants do not carry over; their class weights do (loss_cls, no-object last).
MASK_CLASSIFICATION = ('mask2former', 'maskformer')


# ------------------------------------------------------------------ configs and commands


def base_stem(stem: str) -> str:
    """``x_cw-ce`` -> ``x``: the stem of the main config a variant derives from."""
    for v in sorted(VARIANTS, key=len, reverse=True):
        if stem.endswith('_' + v):
            return stem[: -len(v) - 1]
    return stem


def _family(config) -> str:
    return Path(config).stem.split('_')[0]


def _inside(path: Path, root: Path) -> Optional[str]:
    """``path`` relative to ``root`` (None when outside it)."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def _ours(config: Optional[str]) -> Optional[Path]:
    """``config`` as a path when it is one of this repository's configs."""
    if not config or '::' in config:
        return None
    p = ROOT / config  # an absolute config stays itself
    return p if _inside(p, ROOT / 'configs') is not None else None


def variant(config: Optional[str], name: str) -> Optional[str]:
    """The ``_<name>`` variant of ``config`` when this repository has it."""
    p = _ours(config)
    if p is None:
        return None
    cand = p.parent / f'{base_stem(p.stem)}_{name}.py'
    return cand.relative_to(ROOT).as_posix() if cand.is_file() else None


def variant_or_example(config: Optional[str], name: str) -> tuple:
    """(path, is_ours): the run's own variant, else another config's (same family first)."""
    own = variant(config, name)
    if own:
        return own, True
    algo = _family(config) if config else ''
    examples = [p.relative_to(ROOT).as_posix() for p in (ROOT / 'configs').rglob(f'*_{name}.py')
                if base_stem(p.stem) + '_' + name == p.stem]
    return min(examples, key=lambda p: (_family(p) != algo, p), default=None), False


def bigger_encoders(config: Optional[str]) -> list:
    """Configs of this repository identical to ``config`` but a bigger backbone."""
    p = _ours(config)
    stem = base_stem(p.stem) if p else ''
    m = _BACKBONE.search(stem)
    order = _SIZES.get(m.group(1), '0123456789') if m else ''
    if not m or m.group(2) not in order:
        return []
    out = []
    for size in order[order.index(m.group(2)) + 1:]:
        cand_stem = stem[: m.start(2)] + size + stem[m.end(2):]
        # the schedule / batch part may differ; match on algo + backbone + dataset
        pattern = f"{cand_stem.split('_')[0]}_{m.group(1)}{size}_*.py"
        for cand in sorted(p.parent.glob(pattern)):
            if base_stem(cand.stem) == cand.stem and cand.stem.endswith(stem.split('_')[-1]):
                out.append(cand.relative_to(ROOT).as_posix())
    return out


def command(*args) -> str:
    return ' '.join(shlex.quote(str(a)) for a in args)


def _train(config, work_dir, *args) -> str:
    return command('python', 'tools/train.py', config, '--work-dir', work_dir, *args)


def short_path(path) -> str:
    """A path as short as it can be said: relative to the cwd when inside it."""
    rel = _inside(Path(path), Path(os.getcwd()))
    return str(Path(path).resolve()) if rel is None else rel or '.'


def _config(run) -> str:
    """The run's config as typed, relative to this repository when inside it."""
    config = run.config_path
    if not config or '::' in config:
        return config or 'CONFIG'
    cwd = next((sr.record['cwd'] for sr in reversed(run.subruns) if sr.record.get('cwd')), ROOT)
    return _inside(Path(cwd) / config, ROOT) or str(Path(cwd) / config)


# ------------------------------------------------------------------ findings


def _lr(x) -> str:
    return f'{x:.3g}' if x is not None else '?'


def curve_sentence(r) -> str:
    k = r.last_k
    if r.verdict == 'no-validation':
        return ('The run never validated: no mIoU was logged in '
                f'{r.n_subruns} sub-run(s), so there is no curve to read.')
    best = f'best mIoU {r.best_miou:.2f} at epoch {r.best_epoch}'
    if r.verdict == 'too-few':
        return (f'Only {r.n_val} validation(s) (at least {rd.MIN_VALIDATIONS} are needed to read '
                f'a trend); {best}, last {r.last_miou:.2f} at epoch {r.last_val_epoch}.')
    win = (f'over the last {k} epochs (validations at epochs {r.window[0]}-{r.window[-1]}, '
           f'{len(r.window)} points)')
    trend = (f'mIoU {r.gain:+.2f} {win}, least-squares slope {r.slope:+.3f} per epoch '
             f'({r.slope * k:+.2f} per {k} epochs)')
    head = {'rising': f'Still rising: {trend}; a slope of at least {rd.RISING_POINTS:g} point per '
                      f'{k} epochs counts as rising.',
            'falling': f'Falling: {trend}; at most {rd.FALLING_POINTS:g} point per {k} epochs '
                       'counts as falling.'}.get(
        r.verdict, f'Converged (plateau): {trend}; within +/-{rd.RISING_POINTS:g} point per {k} '
                   'epochs counts as flat.')
    more = f' {best} of {r.n_val} validations; last {r.last_miou:.2f} at epoch {r.last_val_epoch}.'
    if r.best_gain is not None:
        more += f' The best improved by {r.best_gain:.2f} within the window.'
    return head + more


def overfit_sentences(r) -> list:
    out = []
    if r.loss_change is not None:
        change = f'{100 * r.loss_change:+.1f}% per {r.last_k} epochs'
        if r.degenerate and r.loss_falling:
            out.append(f'The train loss is still falling ({change}) but the model predicts only '
                       f'{r.degenerate}: underfitting, not overfitting.')
        elif r.loss_falling and r.verdict in ('plateau', 'falling'):
            out.append(f'Overfitting sign: the train loss is still falling ({change}, slope '
                       f'{r.loss_slope:+.4f} per epoch) while val mIoU is '
                       f'{"flat" if r.verdict == "plateau" else "falling"}.')
        elif r.loss_falling:
            out.append(f'The train loss is still falling ({change}) and val mIoU with it.')
        else:
            out.append(f'The train loss is flat too ({change}; falling means at least '
                       f'{100 * rd.LOSS_FALL_FRACTION:.0f}%).')
    if r.best_far_before_end and not r.degenerate:
        out.append(f'Overfitting sign: the best epoch ({r.best_epoch}) is {r.epochs_since_best} '
                   'epochs before the last validation '
                   f'({r.last_val_epoch}), which is {r.best_miou - r.last_miou:.2f} below it.')
    elif r.epochs_since_best:
        out.append(f'The best epoch ({r.best_epoch}) is {r.epochs_since_best} epoch(s) before the '
                   f'last validation, which is {r.best_miou - r.last_miou:.2f} below it (a sign '
                   f'when at least max(K, {100 * rd.BEST_FAR_FRACTION:.0f}% of the epochs) before '
                   f'and {rd.BEST_DROP_POINTS:g} point below).')
    return out


def lr_sentences(r) -> list:
    out = []
    for c in r.lr_checks:
        if c.notes and not c.configured:
            out.append(f'Sub-run {c.subrun}: {c.notes[0]}.')
        elif c.matches:
            extra = f' ({c.notes[0]})' if c.notes else ''
            out.append(f'Sub-run {c.subrun}: the logged {c.key} follows config.py\'s schedule '
                       f'({len(c.steps)} logged steps, max deviation {100 * c.max_error:.2f}% of '
                       f'the peak {_lr(c.peak)}){extra}.')
        else:
            i = c.steps.index(c.first_bad)
            out.append(f'LR MISMATCH in sub-run {c.subrun}: the logged {c.key} leaves '
                       f'config.py\'s schedule at iteration {c.first_bad} (logged '
                       f'{_lr(c.logged[i])}, configured {_lr(c.configured[i])}; max deviation '
                       f'{100 * c.max_error:.1f}% of the peak {_lr(c.peak)}).' + (
                           ' It follows the previous sub-run\'s schedule instead: on --resume '
                           'mmengine restores the LR schedulers from the checkpoint, so a new '
                           'max_epochs or scheduler end given at the resume does not move the '
                           'LR.' if c.follows_previous else ''))
    se = r.schedule
    ends = f'LR MISMATCH: the configured LR schedule ends at epoch {se.end_epoch:g} but ' if \
        se and se.end_epoch is not None else ''
    if ends and se.end_epoch > se.max_epochs + 1e-9:
        tail = (f' (ends at {_lr(se.final_lr)}, {100 * se.final_lr / se.peak_lr:.0f}% of its peak '
                f'{_lr(se.peak_lr)})' if se.final_lr is not None and se.peak_lr else '')
        out.append(f'{ends}training stops at epoch {se.max_epochs}: the LR never finishes its '
                   f'decay{tail}. Typical of train_cfg.max_epochs changed with --cfg-options '
                   'without moving the schedulers\' end.')
    elif ends and se.end_epoch < se.max_epochs - 1e-9:
        out.append(f'{ends}training runs to epoch {se.max_epochs}: the last '
                   f'{se.max_epochs - se.end_epoch:g} epoch(s) run at the final LR '
                   f'{_lr(se.final_lr)}.')
    if r.lr_stuck and r.lr_stuck[1] is not None and r.lr_stuck[1] >= rd.LR_STUCK_EPOCHS:
        n, eps, low = r.lr_stuck
        out.append(f'The LR sat at its minimum {_lr(low)} for the last {n} iterations (~{eps:.1f} '
                   'epochs): those epochs barely train.')
    return out


def class_sentences(r, run) -> list:
    if not r.classes:
        return ['No per-class values (the run logged no IoU_per_class lines and no '
                'test_metrics.json is in the work dir).']
    out = []
    if r.weakest:
        parts = [f'{row.name} {row.iou:.2f}' + ('' if row.share is None else
                                                f', {row.share:.2f}% of pixels'
                                                + (', rare' if row.rare else ''))
                 for row in r.weakest]
        s = f'Weakest classes ({r.class_source}): ' + '; '.join(parts) + '.'
        if any(row.share is not None for row in r.classes):
            s += (f' {len(r.weak_rare)} of the {len(r.weakest)} weakest are rare (under '
                  f'{rd.RARE_FACTOR:g}x an even share of {100.0 / len(r.classes):.2f}% of the '
                  'pixels).')
        else:
            s += (' Their pixel frequency is unknown: no test_metrics.json with ground-truth '
                  'pixel counts (tools/test.py writes one).')
        out.append(s)
    if r.degenerate:
        out.append(f'Only {r.degenerate} scores an IoU above {rd.LEARNED_IOU:g}: the model '
                   'predicts it (almost) everywhere and has not learned the other classes yet.')
    if r.confusions:
        out.append('Most confused (share of the true class\'s pixels predicted as the '
                   'other): ' + '; '.join(f'{c.truth} -> {c.predicted} {100 * c.fraction:.1f}% '
                                          f'({c.pixels} px)' for c in r.confusions) + '.')
    elif run.test and run.test.confusion:
        out.append(f'No class loses {100 * rd.CONFUSION_MIN:.0f}% or more of its pixels to one '
                   'other class.')
    return out


def findings(r, run) -> list:
    """The reading in sentences, most important first."""
    sub = f'{r.n_subruns} training sub-run(s)'
    resumes = [sr for sr in run.subruns if sr.resumed_at or sr.resumed_from]
    if resumes:
        sub += ', resumed ' + ', '.join(
            f'at epoch {sr.resumed_at[0]}' if sr.resumed_at else f'from {sr.resumed_from}'
            for sr in resumes)
    if run.empty:
        sub += (f'; {len(run.empty)} start(s) logged nothing '
                f'({", ".join(s.name for s in run.empty)})')
    if r.epochs_trained is not None:
        sub += f'; trained to epoch {r.epochs_trained}' + (f' of {r.max_epochs}'
                                                            if r.max_epochs else '')
    out = [sub + '.', curve_sentence(r)]
    out += overfit_sentences(r) if r.n_val else []
    out += lr_sentences(r) + class_sentences(r, run)
    if r.batch:
        actual, planned, label = r.batch
        out.append(f'Trained with a total batch of {actual}, but the config name says {label} = '
                   f'{planned}' + (' (LR auto-scaled).' if r.auto_scaled else
                                             ': the LR was chosen for the named batch.'))
    return out


# ------------------------------------------------------------------ next steps


@dataclass
class NextStep:
    key: str  # what it answers: resume, class-imbalance, overfit, lr, batch, ...
    why: str
    commands: list = field(default_factory=list)


def next_steps(r, run) -> list:
    """Ordered: fix what is broken first (validation, LR, batch), then what to try."""
    cfg = _config(run)
    wd = short_path(run.work_dir)
    wd_new = wd.rstrip('/') + '_v2'
    steps = []

    def add(key, why, *commands):
        steps.append(NextStep(key, why, list(commands)))

    resume_kept_schedule = any(c.follows_previous for c in r.lr_checks)
    if r.verdict == 'no-validation':
        add('validate', 'Nothing was validated: make validation run (train_cfg.val_interval at '
            'most max_epochs, a val_dataloader and a val_evaluator), then continue.',
            _train(cfg, wd, '--resume', '--cfg-options', 'train_cfg.val_interval=1'))
    # ---- LR
    se = r.schedule
    want_longer = r.verdict in ('rising', 'too-few') or bool(r.degenerate)
    last = r.epochs_trained or r.last_val_epoch or 0
    longer = max(last + r.last_k, math.ceil(1.5 * last))
    if resume_kept_schedule and not want_longer:
        add('lr', 'The resumed sub-run kept the checkpoint\'s LR schedule. To train with the '
            'schedule stretched, start a new run with --max-epochs (it moves every scheduler end '
            'with it):',
            _train(cfg, wd_new, '--max-epochs', r.max_epochs or last))
    elif not resume_kept_schedule and se and se.end_epoch is not None and \
            abs(se.end_epoch - se.max_epochs) > 1e-9:
        add('lr', f'The schedule ends at epoch {se.end_epoch:g}, training at {se.max_epochs}: set '
            'the length with --max-epochs, which stretches the schedule, instead of --cfg-options '
            'train_cfg.max_epochs=N:', _train(cfg, wd_new, '--max-epochs', se.max_epochs))
    elif r.lr_mismatch and not resume_kept_schedule:
        bad = next(c for c in r.lr_checks if c.first_bad is not None)
        add('lr', f'Find what moved the LR away from the config in sub-run {bad.subrun} (a resume '
            'from another schedule, a hook, an edited checkpoint): compare '
            f'{wd}/{bad.subrun}/config.py\'s param_scheduler with the LR plot.')
    # ---- batch
    if r.batch and not r.auto_scaled:
        actual, planned, label = r.batch
        add('batch', f'The batch ({actual}) differs from the config name\'s {label} = {planned}: '
            'scale the LR with it.', _train(cfg, wd_new, '--auto-scale-lr'))
    # ---- the curve
    if want_longer:
        why = {'rising': 'Still rising: train longer.',
               'too-few': 'Too few validations to judge: train longer.'}.get(r.verdict, '')
        if r.degenerate:
            why = (why + ' ' if why else '') + (f'The model predicts only {r.degenerate}: train '
                                                'longer (and check the LR above).')
        if resume_kept_schedule:
            add('resume', why + ' A resume keeps the checkpoint\'s LR schedule (as this run '
                'shows), so start a longer run; --max-epochs stretches the schedule:',
                _train(cfg, wd_new, '--max-epochs', longer))
        else:
            add('resume', why + ' --max-epochs stretches the schedule:',
                _train(cfg, wd, '--resume', '--max-epochs', longer))
    if r.verdict in ('plateau', 'falling') and r.imbalance:
        names = ', '.join(row.name for row in r.weak_rare)
        why = f'Plateau with weak rare classes ({names}): weight the loss by class frequency.'
        cw, ours = variant_or_example(cfg, 'cw-ce')
        if ours:
            add('class-imbalance', why + ' Compute the weights, then train the class-weighted CE '
                'variant:',
                command('python', 'tools/class_weights.py', cw, '--method', 'inverse'),
                _train(cw, f'{wd}_cw-ce'))
        else:
            add('class-imbalance', why + ' Compute the weights for this config and set them as '
                'the decode head loss\'s class_weight'
                + (f' as {cw} does' if cw else '') + ':',
                command('python', 'tools/class_weights.py', cfg, '--method', 'inverse'))
        algo = _family(cfg)
        own, other = [], []
        for name, what in (('focal', 'focal'), ('lovasz', 'Lovasz'), ('ce-lovasz', 'CE + Lovasz')):
            path, ours = variant_or_example(cfg, name)
            if ours:
                own.append((what, _train(path, f'{wd}_{name}')))
            # a query-classifying head's loss is not a pixel loss: only its own family's
            elif path and (algo not in MASK_CLASSIFICATION or _family(path) == algo):
                other.append(f'{what}: {path}')
        if own:
            add('class-imbalance', 'Or a loss that weighs rare classes up: '
                + ', '.join(w for w, _ in own) + ':', *[c for _, c in own])
        if other:
            add('class-imbalance', 'Or a loss that weighs rare classes up (this config has no '
                'such variant: copy the decode head '
                f'loss of one into {cfg}): ' + '; '.join(other) + '.')
    if r.overfitting:
        path, ours = variant_or_example(cfg, 'strong-aug')
        copy = (f' This config has no _strong-aug variant: copy the change of {path} (against its '
                f'main config) into {cfg}.' if path and not ours else '')
        add('overfit', 'Overfitting signs: stronger augmentation.' + copy,
            *([_train(path, f'{wd}_strong-aug')] if ours else []))
    if r.verdict in ('plateau', 'falling') and not r.imbalance and not r.overfitting:
        big = bigger_encoders(cfg)
        if big:
            add('capacity', 'Converged without a class or overfitting problem: a bigger encoder.',
                _train(big[0], short_path(Path(run.work_dir).parent / Path(big[0]).stem)))
        for name, what in (('cosine', 'a cosine LR schedule'), ('aux-head', 'an auxiliary head')):
            path = variant(cfg, name)
            if path:
                add('capacity', f'Or {what}.', _train(path, f'{wd}_{name}'))
    # ---- what the report could not see
    if run.test is None and r.n_val:
        best = sorted(run.work_dir.glob('best_*.pth'), key=lambda p: p.stat().st_mtime)
        name = f'best_mIoU_epoch_{r.best_epoch}.pth' if r.best_epoch else 'CHECKPOINT.pth'
        best = best[-1] if best else run.work_dir / name
        add('test', 'Test the best checkpoint for per-class IoU, pixel frequencies and the '
            'confusion matrix (then run this report again):',
            command('python', 'tools/test.py', cfg, short_path(best), '--work-dir', wd))
    return [s for s in steps if s.why]
