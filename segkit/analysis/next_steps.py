"""Concrete next steps for a reading: this repository's commands and config variants."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from segkit.analysis.advice import (bigger_encoders, command, repo_relative, short_path, variant,
                     variant_or_example)


@dataclass
class NextStep:
    key: str  # what it answers: resume, class-imbalance, overfit, lr, batch, ...
    why: str
    commands: list = field(default_factory=list)


# Heads that classify queries (then masks): the pixel losses of the focal / Lovasz
# variants do not carry over; their class weights do (loss_cls, no-object last).
MASK_CLASSIFICATION = ('mask2former', 'maskformer')


def _best_checkpoint(run, r) -> str:
    best = sorted(run.work_dir.glob('best_*.pth'), key=lambda p: p.stat().st_mtime)
    if best:
        return short_path(best[-1])
    name = f'best_mIoU_epoch_{r.best_epoch}.pth' if r.best_epoch else 'CHECKPOINT.pth'
    return short_path(run.work_dir / name)


def _config(run) -> str:
    cwd = next((sr.record.get('cwd') for sr in reversed(run.subruns) if sr.record.get('cwd')),
               None)
    return repo_relative(run.config_path, cwd) or 'CONFIG'


def _variant_step(key, why, config, name, wd, extra_before=()) -> NextStep:
    path, ours = variant_or_example(config, name)
    if path is None:
        return NextStep(key, why)
    if ours:
        return NextStep(key, why, [*extra_before,
                                   command('python', 'tools/train.py', path, '--work-dir',
                                           f'{wd}_{name}')])
    return NextStep(key, why + f' This config has no _{name} variant: copy the change of '
                    f'{path} (against its main config) into {config}.', list(extra_before))


def next_steps(r, run) -> list:
    """Ordered: fix what is broken first (validation, LR, batch), then what to try."""
    cfg = _config(run)
    wd = short_path(run.work_dir)
    wd_new = wd.rstrip('/') + '_v2'
    steps = []
    resume_kept_schedule = any(c.follows_previous for c in r.lr_checks)

    if r.verdict == 'no-validation':
        steps.append(NextStep('validate', 'Nothing was validated: make validation run '
                              '(train_cfg.val_interval at most max_epochs, a val_dataloader '
                              'and a val_evaluator), then continue.',
                              [command('python', 'tools/train.py', cfg, '--work-dir', wd,
                                       '--resume', '--cfg-options',
                                       'train_cfg.val_interval=1')]))
    # ---- LR
    se = r.schedule
    want_longer = r.verdict in ('rising', 'too-few') or bool(r.degenerate)
    last = r.epochs_trained or r.last_val_epoch or 0
    longer = max(last + r.last_k, math.ceil(1.5 * last))
    if resume_kept_schedule and not want_longer:
        steps.append(NextStep('lr', 'The resumed sub-run kept the checkpoint\'s LR schedule. '
                              'To train with the schedule stretched, start a new run with '
                              '--max-epochs (it moves every scheduler end with it):',
                              [command('python', 'tools/train.py', cfg, '--work-dir', wd_new,
                                       '--max-epochs', r.max_epochs or last)]))
    elif not resume_kept_schedule and se and se.end_epoch is not None and \
            abs(se.end_epoch - se.max_epochs) > 1e-9:
        steps.append(NextStep('lr', f'The schedule ends at epoch {se.end_epoch:g}, training '
                              f'at {se.max_epochs}: set the length with --max-epochs, which '
                              'stretches the schedule, instead of --cfg-options '
                              'train_cfg.max_epochs=N:',
                              [command('python', 'tools/train.py', cfg, '--work-dir', wd_new,
                                       '--max-epochs', se.max_epochs)]))
    elif r.lr_mismatch and not resume_kept_schedule:
        bad = next(c for c in r.lr_checks if c.first_bad is not None)
        steps.append(NextStep('lr', f'Find what moved the LR away from the config in sub-run '
                              f'{bad.subrun} (a resume from another schedule, a hook, an '
                              f'edited checkpoint): compare {wd}/{bad.subrun}/config.py\'s '
                              'param_scheduler with the LR plot.'))
    # ---- batch
    if r.batch and not r.auto_scaled:
        actual, planned, label = r.batch
        steps.append(NextStep('batch', f'The batch ({actual}) differs from the config name\'s '
                              f'{label} = {planned}: scale the LR with it.',
                              [command('python', 'tools/train.py', cfg, '--work-dir', wd_new,
                                       '--auto-scale-lr')]))
    # ---- the curve
    if want_longer:
        why = {'rising': 'Still rising: train longer.',
               'too-few': 'Too few validations to judge: train longer.'}.get(
            r.verdict, '')
        if r.degenerate:
            why = (why + ' ' if why else '') + (f'The model predicts only {r.degenerate}: '
                                                'train longer (and check the LR above).')
        if resume_kept_schedule:
            steps.append(NextStep('resume', why + ' A resume keeps the checkpoint\'s LR '
                                  'schedule (as this run shows), so start a longer run; '
                                  '--max-epochs stretches the schedule:',
                                  [command('python', 'tools/train.py', cfg, '--work-dir',
                                           wd_new, '--max-epochs', longer)]))
        else:
            steps.append(NextStep('resume', why + ' --max-epochs stretches the schedule:',
                                  [command('python', 'tools/train.py', cfg, '--work-dir', wd,
                                           '--resume', '--max-epochs', longer)]))
    if r.verdict in ('plateau', 'falling') and r.imbalance:
        names = ', '.join(row.name for row in r.weak_rare)
        why = (f'Plateau with weak rare classes ({names}): weight the loss by class '
               'frequency.')
        cw, ours = variant_or_example(cfg, 'cw-ce')
        if cw and ours:
            steps.append(NextStep('class-imbalance', why + ' Compute the weights, then train '
                                  'the class-weighted CE variant:',
                                  [command('python', 'tools/class_weights.py', cw,
                                           '--method', 'inverse'),
                                   command('python', 'tools/train.py', cw, '--work-dir',
                                           f'{wd}_cw-ce')]))
        else:
            steps.append(NextStep('class-imbalance', why + ' Compute the weights for this '
                                  'config and set them as the decode head loss\'s class_weight'
                                  + (f' as {cw} does' if cw else '') + ':',
                                  [command('python', 'tools/class_weights.py', cfg,
                                           '--method', 'inverse')]))
        losses = [(name, what, *variant_or_example(cfg, name)) for name, what in (
            ('focal', 'focal'), ('lovasz', 'Lovasz'), ('ce-lovasz', 'CE + Lovasz'))]
        own = [(what, path) for _, what, path, ours in losses if path and ours]
        other = [(what, path) for _, what, path, ours in losses if path and not ours]
        algo = Path(cfg).stem.split('_')[0]
        if algo in MASK_CLASSIFICATION:  # their loss classifies queries, not pixels:
            other = [(w, p) for w, p in other if Path(p).stem.split('_')[0] == algo]
        if own:
            steps.append(NextStep('class-imbalance', 'Or a loss that weighs rare classes up: '
                                  + ', '.join(w for w, _ in own) + ':',
                                  [command('python', 'tools/train.py', path, '--work-dir',
                                           f'{wd}_{Path(path).stem.rsplit("_", 1)[-1]}')
                                   for _, path in own]))
        if other:
            steps.append(NextStep('class-imbalance', 'Or a loss that weighs rare classes up '
                                  '(this config has no such variant: copy the decode head '
                                  f'loss of one into {cfg}): '
                                  + '; '.join(f'{w}: {p}' for w, p in other) + '.'))
    if r.overfitting:
        steps.append(_variant_step('overfit', 'Overfitting signs: stronger augmentation.',
                                   cfg, 'strong-aug', wd))
    if r.verdict in ('plateau', 'falling') and not r.imbalance and not r.overfitting:
        big = bigger_encoders(cfg)
        if big:
            steps.append(NextStep('capacity', 'Converged without a class or overfitting '
                                  'problem: a bigger encoder.',
                                  [command('python', 'tools/train.py', big[0], '--work-dir',
                                           short_path(Path(run.work_dir).parent /
                                                      Path(big[0]).stem))]))
        for name, what in (('cosine', 'a cosine LR schedule'),
                           ('aux-head', 'an auxiliary head')):
            path = variant(cfg, name)
            if path:
                steps.append(NextStep('capacity', f'Or {what}.',
                                      [command('python', 'tools/train.py', path,
                                               '--work-dir', f'{wd}_{name}')]))
    # ---- what the report could not see
    if run.test is None and r.n_val:
        steps.append(NextStep('test', 'Test the best checkpoint for per-class IoU, pixel '
                              'frequencies and the confusion matrix (then run this report '
                              'again):',
                              [command('python', 'tools/test.py', cfg,
                                       _best_checkpoint(run, r), '--work-dir', wd)]))
    return [s for s in steps if s.why]
