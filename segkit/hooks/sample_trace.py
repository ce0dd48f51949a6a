"""Which samples each rank trained on, per epoch (debugging data sharding)."""
from __future__ import annotations

from pathlib import Path

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class SampleTraceHook(Hook):
    """Writes ``<work_dir>/sample_trace/rank<R>_epoch<E>.txt``: the image path of every
    training sample this rank saw in epoch E, in order. Add it to ``custom_hooks`` to
    check that ranks see disjoint shards and that each epoch reshuffles."""

    def before_train_epoch(self, runner) -> None:
        self._seen = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        for sample in (data_batch or {}).get('data_samples', []):
            self._seen.append(sample.metainfo.get('img_path', '?'))

    def after_train_epoch(self, runner) -> None:
        out = Path(runner.work_dir) / 'sample_trace'
        out.mkdir(parents=True, exist_ok=True)
        (out / f'rank{runner.rank}_epoch{runner.epoch + 1}.txt').write_text(
            '\n'.join(self._seen) + '\n')
