"""Reading a finished (or interrupted and resumed) run: why it plateaued, what next.

    run = load_run('work_dirs/x')            # logs of every sub-run, merged
    reading = read_run(run, last_k=5)        # the numbers and the sentences
    report = write_report(run, reading, 'work_dirs/x/report')
"""
from pathlib import Path

from segkit.analysis.advice import NextStep, findings, next_steps
from segkit.analysis.logs import Run, SubRun, TestResult, TrainPoint, ValPoint, load_run
from segkit.analysis.reading import DEFAULT_LAST_K, Reading, measure
from segkit.analysis.report import Report, print_summary, write_report

__all__ = ['Run', 'SubRun', 'TestResult', 'TrainPoint', 'ValPoint', 'load_run', 'Reading',
           'read_run', 'NextStep', 'Report', 'write_report', 'print_summary', 'analyze']


def read_run(run: Run, last_k: int = DEFAULT_LAST_K) -> Reading:
    """The numbers of ``run`` (``reading``), then the sentences and commands (``advice``)."""
    r = measure(run, last_k)
    r.findings = findings(r, run)
    r.next_steps = next_steps(r, run)
    return r


def analyze(work_dir, out=None, compare=(), last_k: int = 5, console=None) -> tuple:
    """What ``tools/analyze_run.py`` does: (Run, Reading, Report)."""
    run = load_run(work_dir)
    reading = read_run(run, last_k=last_k)
    others = [(o, read_run(o, last_k=last_k)) for o in map(load_run, compare)]
    report = write_report(run, reading, out or Path(work_dir) / 'report', compare=others)
    print_summary(run, reading, report, compare=others, console=console)
    return run, reading, report
