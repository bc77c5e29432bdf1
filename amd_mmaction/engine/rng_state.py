"""Exact resume: every random stream that shapes training is saved in each
checkpoint and put back when the run resumes (docs/reliability.md, "Exact
resume").

The streams, and where they live in an unbroken run:

* the main process: Python's ``random``, numpy's global generator, torch's
  CPU generator (model init, drop path, the DataLoader's per-iterator seed)
  and every CUDA device's generator;
* the data pipeline: with ``num_workers=0`` the same generators of the
  main process (the transforms draw from numpy's and Python's global
  state); with workers, each worker process's own generators, which
  mmengine's ``worker_init_fn`` seeds from the worker id alone (the same
  seeds every epoch when workers are re-created, a continuing state when
  they are persistent);
* transforms that own a generator (``AsymmetricTubeMask(seed=...)``): any
  object in the dataset's pipeline with ``get_rng_state()`` /
  ``set_rng_state(state)``.

Nothing here draws a random number, so an unbroken run is unchanged. The
pipeline's state after each batch is captured where the batch was made (a
wrapper around the loader's ``collate_fn``) and travels with the batch, so
a batch prepared ahead (DataLoader workers, :class:`PrefetchLoader`) does
not leak its draws into the checkpoint. :class:`DataStreams` keeps, per
worker, the state the worker must have before its next batch; the
checkpoint stores those, and the resumed run hands them to its workers
(a wrapper around ``worker_init_fn``). ``ResumableEpochBasedTrainLoop``
decides when each stream is put back; :class:`ExactResumeHook` only moves
the states into and out of the checkpoint (key ``rng_state``).
"""
import inspect
import random
import warnings
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.hooks import Hook

KEY = 'rng_state'
VERSION = 1
MAIN = -1  # the data stream of the main process (num_workers=0) in DataStreams


def stateful_transforms(dataset) -> List[object]:
    """Objects of the dataset's pipeline (nested ``pipeline`` /
    ``transforms``, wrapped ``dataset`` / ``datasets``) that own a
    generator: they have ``get_rng_state`` and ``set_rng_state``. The
    order is that of the pipeline, the same in every process."""
    found, seen = [], set()

    def visit(obj):
        if obj is None or id(obj) in seen or inspect.isroutine(obj) or \
                isinstance(obj, (str, bytes, dict)):
            return
        seen.add(id(obj))
        if callable(getattr(obj, 'get_rng_state', None)) and \
                callable(getattr(obj, 'set_rng_state', None)):
            found.append(obj)
        for name in ('dataset', 'datasets', 'pipeline', 'transforms'):
            child = getattr(obj, name, None)
            for c in child if isinstance(child, (list, tuple)) else (child,):
                visit(c)
    visit(dataset)
    return found


def capture(dataset=None, cuda: bool = False) -> dict:
    """This process's generators (and the pipeline's own, when ``dataset``
    is given). Reading them draws nothing."""
    state = {'python': random.getstate(), 'numpy': np.random.get_state(),
             'torch': torch.get_rng_state().numpy(),
             'transforms': [t.get_rng_state() for t in stateful_transforms(dataset)]
             if dataset is not None else None}
    if cuda and torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = [s.numpy() for s in torch.cuda.get_rng_state_all()]
    return state


def restore(state: dict, dataset=None, data: bool = True, torch_cpu: bool = True,
            cuda: bool = True) -> None:
    """Put back what :func:`capture` read. ``data``: Python's and numpy's
    generators and the pipeline's own; ``torch_cpu`` / ``cuda``: torch's."""
    if data:
        random.setstate(state['python'])
        np.random.set_state(state['numpy'])
        own = state.get('transforms')
        if dataset is not None and own is not None:
            objs = stateful_transforms(dataset)
            if len(objs) != len(own):
                raise ValueError(
                    f'the pipeline has {len(objs)} transforms with their own generator '
                    f'({", ".join(type(o).__name__ for o in objs) or "none"}), the '
                    f'checkpoint recorded {len(own)}: the data pipeline of the config '
                    'changed since the checkpoint was written')
            for obj, s in zip(objs, own):
                obj.set_rng_state(s)
    if torch_cpu:
        torch.set_rng_state(torch.from_numpy(np.ascontiguousarray(state['torch'])))
    saved = state.get('cuda')
    if cuda and saved and torch.cuda.is_available():
        if len(saved) != torch.cuda.device_count():
            raise ValueError(f'the checkpoint recorded {len(saved)} CUDA generators, this '
                             f'process sees {torch.cuda.device_count()} devices')
        torch.cuda.set_rng_state_all([torch.from_numpy(np.ascontiguousarray(s)) for s in saved])


class RecordingCollate:
    """Wraps a loader's ``collate_fn``: returns ``(batch, (worker, state))``
    with the pipeline's state right after this batch was made, in the
    process (worker id, or :data:`MAIN`) that made it."""

    def __init__(self, collate_fn, dataset):
        self.collate_fn, self.dataset = collate_fn, dataset

    def __call__(self, items):
        batch = self.collate_fn(items)
        info = torch.utils.data.get_worker_info()
        if info is None:
            return batch, (MAIN, capture(self.dataset))
        return batch, (info.id, capture(info.dataset))


class RestoringWorkerInit:
    """Wraps a loader's ``worker_init_fn``: after it (mmengine seeds the
    worker), worker ``w`` takes ``states[w]`` when there is one."""

    def __init__(self, init_fn, states: Optional[Dict[int, dict]] = None):
        self.init_fn, self.states = init_fn, dict(states or {})

    def __call__(self, worker_id):
        if self.init_fn is not None:
            self.init_fn(worker_id)
        state = self.states.get(worker_id)
        if state is not None:
            try:
                restore(state, torch.utils.data.get_worker_info().dataset, cuda=False)
            except ValueError as err:
                warnings.warn(f'resume: data worker {worker_id}: {err}; its streams start '
                              'from its seed')


class DataStreams:
    """The data pipeline's streams, as seen by the consumer of the batches
    (the training loop): per producer (worker id, or :data:`MAIN` for
    ``num_workers=0``), the state after its last consumed batch and the one
    before that. Batches prepared ahead and not yet consumed do not count.

    A DataLoader hands batch ``i`` of an epoch to worker ``i % num_workers``,
    so after ``done`` consumed batches, worker ``w`` next makes batch
    ``aligned(done) + w`` (``aligned(done) = done - done % num_workers``): its
    state before that batch is what :meth:`targets` returns. A resumed epoch
    therefore starts its sampler at ``aligned(done)``, re-makes the
    ``done % num_workers`` batches already trained (dropped, never trained
    twice) and keeps every worker on the batches it had in the unbroken run:
    persistent workers then go on into the next epochs as they did.
    """

    def __init__(self, num_workers: int, persistent: bool):
        self.num_workers = int(num_workers)
        self.persistent = bool(persistent) and self.num_workers > 0
        self.last: Dict[int, dict] = {}
        self.prev: Dict[int, Optional[dict]] = {}
        self.done = 0

    def aligned(self, done: int) -> int:
        return done - done % self.num_workers if self.num_workers else done

    def start_epoch(self, start: int = 0, states: Optional[Dict[int, dict]] = None) -> None:
        """A new epoch whose first batch is ``start``. Re-created workers
        start from their seed: their states are forgotten. ``states``
        (resume): the state of each producer before its next batch."""
        if states is not None:
            self.last = dict(states)
            self.prev = {}
        elif not self.persistent:
            for w in [w for w in self.last if w != MAIN]:
                del self.last[w]
                self.prev.pop(w, None)
        self.done = start

    def consume(self, record=None) -> None:
        """One more batch taken by the training loop; ``record``: its
        ``(producer, state after it)`` when recorded."""
        if record is not None:
            worker, state = record
            self.prev[worker] = self.last.get(worker)
            self.last[worker] = state
        self.done += 1

    def targets(self, epoch_len: int) -> Dict[int, dict]:
        """Per producer, its state before its next batch (none: a worker
        that starts from its seed)."""
        if not self.num_workers:
            return {MAIN: self.last[MAIN]} if MAIN in self.last else {}
        if self.done >= epoch_len:  # the next batch is batch 0 of the next epoch
            return {w: s for w, s in self.last.items() if w != MAIN} if self.persistent else {}
        start = self.aligned(self.done)
        out = {}
        for w in range(self.num_workers):
            state = self.prev.get(w) if start + w < self.done else self.last.get(w)
            if state is not None:
                out[w] = state
        return out


class ExactResumeHook(Hook):
    """Moves the loop's random state into each checkpoint (``rng_state``)
    and hands it back to the loop when a checkpoint is loaded. Installed by
    ``ResumableEpochBasedTrainLoop``; the loop decides, on resume, when each
    stream is put back (``load_from`` without ``resume`` restores nothing)."""

    priority = 'LOWEST'

    def __init__(self, loop=None):
        self.loop = loop

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.loop is not None:
            checkpoint[KEY] = self.loop.random_state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.loop is not None:
            self.loop.load_random_state(checkpoint.get(KEY))
