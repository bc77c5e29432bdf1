"""An epoch loop that resumes exactly (same batches, same random numbers)
from any checkpoint, mid-epoch ones included, and can prepare batches ahead
in a thread."""
import itertools

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from mmaction.registry import LOOPS

from amd_mmaction.engine import rng_state
from amd_mmaction.engine.prefetch import PrefetchLoader

_UNSET = object()


class _SkipFirst:
    """A sampler that drops the first ``n`` indices of another (no decoding:
    the skipped samples are never fetched)."""

    def __init__(self, sampler, n: int):
        self.sampler, self.n = sampler, n

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.n, None)

    def __len__(self):
        return max(len(self.sampler) - self.n, 0)


class _Resume:
    """What a resumed run puts back, and when (see ``run_epoch``)."""

    def __init__(self, state: dict, loader, exact_workers: bool):
        self.state, self.loader = state, loader
        data = state['loader']
        self.workers = {w: s for w, s in data['workers'].items() if w != rng_state.MAIN} \
            if exact_workers else {}
        # num_workers=0 with batches prepared ahead: the pipeline's numpy and
        # Python streams are those after the last *trained* batch
        self.main_data = data['workers'].get(rng_state.MAIN)
        self.streams = dict(data['workers']) if exact_workers else None

    def restore_main(self) -> None:
        main = self.state['main']
        try:
            rng_state.restore(self.main_data or main, self.loader.dataset,
                              torch_cpu=False, cuda=False)
            rng_state.restore(main, data=False)
        except ValueError as err:
            print_log(f'resume: {err}; those streams start fresh, and the run will not end '
                      'with the weights of an unbroken run', logger='current', level=30)


class _EpochSource:
    """One epoch of the loader, from the batch the sampler starts at:
    yields ``(batch, record, train)``; ``record`` is the pipeline's state
    after the batch (None when not recorded), ``train`` False for the first
    ``drop`` batches (already trained; re-made only to put the workers'
    streams where they were)."""

    def __init__(self, loader, recording: bool, drop: int = 0, after_iter=None,
                 fork_torch: bool = False):
        self.loader, self.recording, self.drop = loader, recording, drop
        self.after_iter, self.fork_torch = after_iter, fork_torch

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):
        if name == 'loader':
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __iter__(self):
        # A DataLoader draws its workers' base seed from torch's generator when
        # an iterator is made; where the unbroken run made none here (persistent
        # workers after their first epoch), the draw must not count.
        saved = torch.get_rng_state() if self.fork_torch else None
        it = iter(self.loader)
        if saved is not None:
            torch.set_rng_state(saved)
        if self.after_iter is not None:
            self.after_iter()
        for i, item in enumerate(it):
            batch, record = item if self.recording else (item, None)
            yield batch, record, i >= self.drop


class _Trained:
    """What the training loop iterates during an epoch: the batches to
    train, each counted into ``streams`` when it is taken (batches prepared
    ahead are not). Everything else is the DataLoader's."""

    def __init__(self, source, raw_loader, streams, length: int):
        self.source, self.raw_loader, self.streams, self.length = \
            source, raw_loader, streams, length

    def __len__(self):
        return self.length

    def __getattr__(self, name):
        if name == 'raw_loader':
            raise AttributeError(name)
        return getattr(self.raw_loader, name)

    def __iter__(self):
        for batch, record, train in self.source:
            self.streams.consume(record)
            if train:
                yield batch


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that resumes exactly: the resumed run trains
    the batches the killed run would have trained, with the same random
    numbers, and ends with the same weights (docs/reliability.md, "Exact
    resume").

    * From a checkpoint taken in the middle of an epoch
      (``CheckpointHook(by_epoch=False)``) it skips the batches of that epoch
      already trained instead of replaying the epoch from its start
      (mmengine's behaviour, which trains those batches twice and ends the run
      late). The sampler's order is the same (seed + epoch). The first resumed
      epoch logs ``[epoch][i/n]`` with ``n`` the batches left; iteration
      counts, lr and checkpoints follow ``runner.iter``. A checkpoint taken
      after the last batch of an epoch goes on with that epoch's end.
    * Every checkpoint carries the random streams (``rng_state``, written by
      :class:`~amd_mmaction.engine.rng_state.ExactResumeHook`, which this loop
      installs): the main process's Python, numpy, torch CPU and CUDA
      generators, and the data pipeline's, per DataLoader worker, as they were
      after the last trained batch. ``--resume`` puts them back where the
      unbroken run was at that moment. Nothing of this draws a random number:
      an unbroken run is unchanged.

    ``prefetch=n`` (default 0: off) prepares the next ``n`` batches in a
    background thread (:class:`PrefetchLoader`): for ``num_workers=0``
    loaders, above all DALI GPU decoding, which cannot use worker processes.
    """

    def __init__(self, runner, dataloader, *args, prefetch: int = 0, **kwargs):
        super().__init__(runner, dataloader, *args, **kwargs)
        if prefetch < 0:
            raise ValueError(f'train_cfg.prefetch must be >= 0, got {prefetch}')
        self.prefetch = prefetch
        loader = self.dataloader
        workers = int(getattr(loader, 'num_workers', 0) or 0)
        self._streams = rng_state.DataStreams(
            workers, bool(getattr(loader, 'persistent_workers', False)))
        # the pipeline's state per batch is needed where batches are made
        # ahead of training: in workers, or in the prefetch thread
        self._recording = hasattr(loader, 'collate_fn') and (workers > 0 or prefetch > 0)
        self._loaded = _UNSET  # rng_state of the last checkpoint loaded
        self._gathered = None  # every rank's streams, for the next checkpoint
        self._next_iter = None  # resume steps left for the next iterator made
        hooks = [h for h in runner.hooks if isinstance(h, rng_state.ExactResumeHook)]
        if hooks:
            hooks[0].loop = self
        else:
            runner.register_hook(rng_state.ExactResumeHook(self))

    # -- the checkpoint's rng_state ------------------------------------------
    def _local_random_state(self) -> dict:
        loader = self._raw_loader()
        return {
            'main': rng_state.capture(loader.dataset, cuda=True),
            'loader': {'num_workers': self._streams.num_workers,
                       'persistent': self._streams.persistent,
                       'epoch_len': len(loader), 'done': self._streams.done,
                       'workers': self._streams.targets(len(loader))}}

    def gather_random_state(self) -> None:
        """Called on every rank just before a checkpoint is saved
        (``SafeCheckpointHook``): with several processes, rank 0 collects
        each rank's streams for the checkpoint it writes."""
        if get_world_size() > 1:
            ranks = all_gather_object(self._local_random_state())
            self._gathered = ranks if get_rank() == 0 else None  # rank 0 saves

    def random_state_dict(self) -> dict:
        """The checkpoint's ``rng_state``: per rank (``ranks[r]``), the main
        process's generators and, per data worker, its state before its next
        batch. With several processes and no :meth:`gather_random_state`
        before the save (mmengine's own ``CheckpointHook``), rank 0's only."""
        ranks, self._gathered = self._gathered, None
        return {'version': rng_state.VERSION, 'world_size': get_world_size(),
                'ranks': list(ranks) if ranks is not None else [self._local_random_state()]}

    def load_random_state(self, state) -> None:
        self._loaded = state

    def _raw_loader(self):
        loader = self.dataloader
        while isinstance(loader, (_Trained, PrefetchLoader, _EpochSource)):
            loader = loader.raw_loader if isinstance(loader, _Trained) else loader.loader
        return loader

    def _take_resume(self, done: int, n: int):
        """The rng_state to put back (None: nothing) in this, the first epoch
        after a checkpoint was loaded."""
        saved, self._loaded = self._loaded, _UNSET
        if saved is _UNSET or self._iter == 0:  # nothing loaded, or load_from
            return None
        rank, world = get_rank(), get_world_size()
        if saved is None:
            why = 'has no random state (rng_state; written before exact resume existed)'
        elif saved['world_size'] != world:
            why = (f"was written by {saved['world_size']} processes, this run has {world}")
        elif rank >= len(saved['ranks']):
            why = (f'holds the random state of rank 0 only (saved by a hook other than '
                   f'SafeCheckpointHook), not that of rank {rank}')
        else:
            why = None
        if why is not None:
            print_log(f'the resumed checkpoint {why}: the run goes on with fresh random '
                      'streams and will not end with the weights of an unbroken run',
                      logger='current', level=30)
            return None
        state = saved['ranks'][rank]
        data = state['loader']
        ended = data['done'] >= data['epoch_len']
        if data['epoch_len'] != n or not (data['done'] == done or (ended and done in (0, n))):
            print_log(f'the random state of the resumed checkpoint was taken after batch '
                      f"{data['done']} of {data['epoch_len']}, the run resumes after batch "
                      f'{done} of {n}: it goes on with the main process streams only, and '
                      'will not end with the weights of an unbroken run',
                      logger='current', level=30)
            return _Resume(state, self.dataloader, exact_workers=False)
        same = (data['num_workers'] == self._streams.num_workers
                and data['persistent'] == self._streams.persistent)
        if not same:
            print_log(f"the resumed checkpoint was written with num_workers="
                      f"{data['num_workers']} (persistent: {data['persistent']}), this run has "
                      f'num_workers={self._streams.num_workers} (persistent: '
                      f'{self._streams.persistent}): the data workers start from their seeds, '
                      'and the run will not end with the weights of an unbroken run',
                      logger='current', level=30)
        return _Resume(state, self.dataloader, exact_workers=same)

    # -- epochs ----------------------------------------------------------------
    def run_epoch(self) -> None:
        loader = self.dataloader
        n = len(loader)
        done = self._iter - self._epoch * n
        resume = self._take_resume(done, n)
        if done == n:
            # an iteration checkpoint after the epoch's last batch: only the
            # end of the epoch is left (hooks: epoch-end checkpoint, logs...)
            self.runner.call_hook('before_train_epoch')
            self.runner.model.train()
            self._streams.start_epoch(n, resume.streams if resume is not None else None)
            if resume is not None:
                resume.restore_main()
                self._next_iter = resume
            print_log(f'resumed at the end of epoch {self._epoch + 1}: all its {n} batches '
                      f'were trained before iteration {self._iter}', logger='current')
            self.runner.call_hook('after_train_epoch')
            self._epoch += 1
            return None
        if not 0 <= done < n or (done and getattr(loader, 'batch_sampler', None) is None):
            # the data set's length changed, or batches cannot be skipped (no
            # batch_sampler): mmengine's replay of the epoch
            self._streams.start_epoch(0)
            return self._run(loader, n, 0, 0, None, None, False)
        start, drop, after_iter, fork = done, 0, None, False
        if resume is None:
            resume, self._next_iter = self._next_iter, None
            # after an iteration checkpoint at an epoch's end (see above)
            fork = resume is not None and self._streams.persistent
            self._streams.start_epoch(0)
        else:
            if resume.streams is not None:
                start = self._streams.aligned(done)
                drop = done - start
            if done == 0:
                # epoch-end checkpoint: the unbroken run went on from here
                resume.restore_main()
                fork = self._streams.persistent
            else:
                # mid-epoch: the unbroken run had made this epoch's iterator
                # before the checkpoint; put the streams back after ours
                after_iter = resume.restore_main
            self._streams.start_epoch(start, resume.streams)
        return self._run(loader, n, start, drop, resume, after_iter, fork)

    def _run(self, loader, n, start, drop, resume, after_iter, fork):
        batch_sampler = getattr(loader, 'batch_sampler', None)
        original_sampler = batch_sampler.sampler if batch_sampler is not None else None
        original_collate = getattr(loader, 'collate_fn', None)
        original_init = getattr(loader, 'worker_init_fn', None)
        if start or drop:
            if start:
                batch_sampler.sampler = _SkipFirst(original_sampler,
                                                   start * batch_sampler.batch_size)
            print_log(f'resumed in the middle of epoch {self._epoch + 1}: skipping its first '
                      f'{start + drop} batches (already trained before iteration {self._iter})'
                      + (f'; {drop} of them are made again (not trained) so that each data '
                         'worker goes on with its own random stream' if drop else ''),
                      logger='current')
        if self._recording:
            loader.collate_fn = rng_state.RecordingCollate(original_collate, loader.dataset)
        if self._streams.num_workers:
            loader.worker_init_fn = rng_state.RestoringWorkerInit(
                original_init, resume.workers if resume is not None else None)
        source = _EpochSource(loader, self._recording, drop, after_iter, fork)
        ahead = PrefetchLoader(source, self.prefetch) if self.prefetch else source
        self.dataloader = _Trained(ahead, loader, self._streams, n - start - drop)
        try:
            super().run_epoch()
        finally:
            self.dataloader = loader
            if start:
                batch_sampler.sampler = original_sampler
            if self._recording:
                loader.collate_fn = original_collate
            if self._streams.num_workers:
                loader.worker_init_fn = original_init
