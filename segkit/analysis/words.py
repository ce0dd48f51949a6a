"""A :class:`~segkit.analysis.reading.Reading` said in sentences, each with its numbers."""
from __future__ import annotations

from segkit.analysis import reading as rd


def _pct(x) -> str:
    return f'{x:.2f}%' if x is not None else '?'


def _lr(x) -> str:
    return f'{x:.3g}' if x is not None else '?'


def _signed(x) -> str:
    return f'{x:+.2f}'


def curve_sentence(r) -> str:
    k = r.last_k
    if r.verdict == 'no-validation':
        return ('The run never validated: no mIoU was logged in '
                f'{r.n_subruns} sub-run(s), so there is no curve to read.')
    best = f'best mIoU {r.best_miou:.2f} at epoch {r.best_epoch}'
    if r.verdict == 'too-few':
        return (f'Only {r.n_val} validation(s) (at least {rd.MIN_VALIDATIONS} are needed '
                f'to read a trend); {best}, last {r.last_miou:.2f} at epoch '
                f'{r.last_val_epoch}.')
    win = (f'over the last {k} epochs (validations at epochs {r.window[0]}-{r.window[-1]}, '
           f'{len(r.window)} points)')
    trend = (f'mIoU {_signed(r.gain)} {win}, least-squares slope {r.slope:+.3f} per epoch '
             f'({r.slope * k:+.2f} per {k} epochs)')
    if r.verdict == 'rising':
        head = (f'Still rising: {trend}; a slope of at least {rd.RISING_POINTS:g} point per '
                f'{k} epochs counts as rising.')
    elif r.verdict == 'falling':
        head = (f'Falling: {trend}; at most {rd.FALLING_POINTS:g} point per {k} epochs '
                'counts as falling.')
    else:
        head = (f'Converged (plateau): {trend}; within +/-{rd.RISING_POINTS:g} point per '
                f'{k} epochs counts as flat.')
    more = f' {best} of {r.n_val} validations; last {r.last_miou:.2f} at epoch {r.last_val_epoch}.'
    if r.best_gain is not None:
        more += f' The best improved by {r.best_gain:.2f} within the window.'
    return head + more


def overfit_sentences(r) -> list:
    out = []
    if r.loss_change is not None:
        change = f'{100 * r.loss_change:+.1f}% per {r.last_k} epochs'
        if r.degenerate and r.loss_falling:
            out.append(f'The train loss is still falling ({change}) but the model predicts '
                       f'only {r.degenerate}: underfitting, not overfitting.')
        elif r.loss_falling and r.verdict in ('plateau', 'falling'):
            out.append(f'Overfitting sign: the train loss is still falling ({change}, '
                       f'slope {r.loss_slope:+.4f} per epoch) while val mIoU is '
                       f'{"flat" if r.verdict == "plateau" else "falling"}.')
        elif r.loss_falling:
            out.append(f'The train loss is still falling ({change}) and val mIoU with it.')
        else:
            out.append(f'The train loss is flat too ({change}; falling means at least '
                       f'{100 * rd.LOSS_FALL_FRACTION:.0f}%).')
    if r.best_far_before_end and not r.degenerate:
        out.append(f'Overfitting sign: the best epoch ({r.best_epoch}) is '
                   f'{r.epochs_since_best} epochs before the last validation '
                   f'({r.last_val_epoch}), which is {r.best_miou - r.last_miou:.2f} below it.')
    elif r.epochs_since_best:
        out.append(f'The best epoch ({r.best_epoch}) is {r.epochs_since_best} epoch(s) before '
                   f'the last validation, which is {r.best_miou - r.last_miou:.2f} below it '
                   f'(a sign when at least max(K, {100 * rd.BEST_FAR_FRACTION:.0f}% of the '
                   f'epochs) before and {rd.BEST_DROP_POINTS:g} point below).')
    return out


def lr_sentences(r) -> list:
    out = []
    for c in r.lr_checks:
        if c.notes and not c.configured:
            out.append(f'Sub-run {c.subrun}: {c.notes[0]}.')
            continue
        n = len(c.steps)
        if c.matches:
            extra = f' ({c.notes[0]})' if c.notes else ''
            out.append(f'Sub-run {c.subrun}: the logged {c.key} follows config.py\'s '
                       f'schedule ({n} logged steps, max deviation '
                       f'{100 * c.max_error:.2f}% of the peak {_lr(c.peak)}){extra}.')
            continue
        i = c.steps.index(c.first_bad)
        s = (f'LR MISMATCH in sub-run {c.subrun}: the logged {c.key} leaves config.py\'s '
             f'schedule at iteration {c.first_bad} (logged {_lr(c.logged[i])}, configured '
             f'{_lr(c.configured[i])}; max deviation {100 * c.max_error:.1f}% of the peak '
             f'{_lr(c.peak)}).')
        if c.follows_previous:
            s += (' It follows the previous sub-run\'s schedule instead: on --resume '
                  'mmengine restores the LR schedulers from the checkpoint, so a new '
                  'max_epochs or scheduler end given at the resume does not move the LR.')
        out.append(s)
    se = r.schedule
    if se and se.end_epoch is not None:
        if se.end_epoch > se.max_epochs + 1e-9:
            tail = (f' (ends at {_lr(se.final_lr)}, {100 * se.final_lr / se.peak_lr:.0f}% of '
                    f'its peak {_lr(se.peak_lr)})' if se.final_lr is not None and se.peak_lr
                    else '')
            out.append(f'LR MISMATCH: the configured LR schedule ends at epoch '
                       f'{se.end_epoch:g} but training stops at epoch {se.max_epochs}: the '
                       f'LR never finishes its decay{tail}. Typical of train_cfg.max_epochs '
                       'changed with --cfg-options without moving the schedulers\' end.')
        elif se.end_epoch < se.max_epochs - 1e-9:
            out.append(f'LR MISMATCH: the configured LR schedule ends at epoch '
                       f'{se.end_epoch:g} but training runs to epoch {se.max_epochs}: the '
                       f'last {se.max_epochs - se.end_epoch:g} epoch(s) run at the final LR '
                       f'{_lr(se.final_lr)}.')
    if r.lr_stuck and r.lr_stuck[1] is not None and r.lr_stuck[1] >= rd.LR_STUCK_EPOCHS:
        n, eps, low = r.lr_stuck
        out.append(f'The LR sat at its minimum {_lr(low)} for the last {n} iterations '
                   f'(~{eps:.1f} epochs): those epochs barely train.')
    return out


def class_sentences(r, run) -> list:
    out = []
    if not r.classes:
        out.append('No per-class values (the run logged no IoU_per_class lines and no '
                   'test_metrics.json is in the work dir).')
        return out
    if r.weakest:
        parts = []
        for row in r.weakest:
            share = (f', {_pct(row.share)} of pixels{", rare" if row.rare else ""}'
                     if row.share is not None else '')
            parts.append(f'{row.name} {row.iou:.2f}{share}')
        s = f'Weakest classes ({r.class_source}): ' + '; '.join(parts) + '.'
        known = [row for row in r.classes if row.share is not None]
        if known:
            even = 100.0 / len(r.classes)
            s += (f' {len(r.weak_rare)} of the {len(r.weakest)} weakest are rare (under '
                  f'{rd.RARE_FACTOR:g}x an even share of {even:.2f}% of the pixels).')
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
        out.append(f'No class loses {100 * rd.CONFUSION_MIN:.0f}% or more of its pixels to '
                   'one other class.')
    return out


def findings(r, run) -> list:
    """The reading in sentences, most important first."""
    out = []
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
        sub += f'; trained to epoch {r.epochs_trained}'
        if r.max_epochs:
            sub += f' of {r.max_epochs}'
    out.append(sub + '.')
    out.append(curve_sentence(r))
    out += overfit_sentences(r) if r.n_val else []
    out += lr_sentences(r)
    out += class_sentences(r, run)
    if r.batch:
        actual, planned, label = r.batch
        out.append(f'Trained with a total batch of {actual}, but the config name says '
                   f'{label} = {planned}' + (' (LR auto-scaled).' if r.auto_scaled else
                                             ': the LR was chosen for the named batch.'))
    return out
