"""An epoch loop that resumes exactly from a mid-epoch checkpoint and can
prepare batches ahead in a thread."""
import itertools

from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from mmaction.registry import LOOPS

from amd_mmaction.engine.prefetch import PrefetchLoader


class _SkipFirst:
    """A sampler that drops the first ``n`` indices of another (no decoding:
    the skipped samples are never fetched)."""

    def __init__(self, sampler, n: int):
        self.sampler, self.n = sampler, n

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.n, None)

    def __len__(self):
        return max(len(self.sampler) - self.n, 0)


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that, resumed from a checkpoint taken in the
    middle of an epoch (``CheckpointHook(by_epoch=False)``), skips the
    batches of that epoch already trained instead of replaying the epoch
    from its start (mmengine's behaviour, which trains those batches twice
    and ends the run late). The sampler's order is the same (seed + epoch),
    so the resumed run sees the batches the killed run would have seen.

    The first resumed epoch logs ``[epoch][i/n]`` with ``n`` the batches
    left; iteration counts, lr and checkpoints follow ``runner.iter``.

    ``prefetch=n`` (default 0: off) prepares the next ``n`` batches in a
    background thread (:class:`PrefetchLoader`): for ``num_workers=0``
    loaders, above all DALI GPU decoding, which cannot use worker processes.
    """

    def __init__(self, *args, prefetch: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        if prefetch < 0:
            raise ValueError(f'train_cfg.prefetch must be >= 0, got {prefetch}')
        self.prefetch = prefetch

    def run_epoch(self) -> None:
        if not self.prefetch:
            return self._run_epoch()
        loader = self.dataloader
        self.dataloader = PrefetchLoader(loader, self.prefetch)
        try:
            self._run_epoch()
        finally:
            self.dataloader = loader

    def _run_epoch(self) -> None:
        done = self._iter - self._epoch * len(self.dataloader)
        batch_sampler = getattr(self.dataloader, 'batch_sampler', None)
        if not 0 < done < len(self.dataloader) or batch_sampler is None:
            return super().run_epoch()
        original = batch_sampler.sampler
        batch_sampler.sampler = _SkipFirst(original, done * batch_sampler.batch_size)
        print_log(f'resumed in the middle of epoch {self._epoch + 1}: skipping its first '
                  f'{done} batches (already trained before iteration {self._iter})',
                  logger='current')
        try:
            super().run_epoch()
        finally:
            batch_sampler.sampler = original
