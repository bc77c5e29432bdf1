"""Batches prepared ahead in a thread (``train_cfg.prefetch``): the same
batches in the same order, really ahead of the consumer, errors raised at
their batch, no thread left behind, and a Runner (DALI CPU path) that
trains to exactly the weights it reaches without prefetching."""
import threading
import time

import pytest
import torch
from torch.utils.data import DataLoader

from mmengine.registry import FUNCTIONS

from amd_mmaction.data.dali.decode import dali_collate
from amd_mmaction.engine.prefetch import PrefetchLoader

COLLATE_THREADS = []


@FUNCTIONS.register_module(force=True)
def thread_recording_dali_collate(data_batch, **kwargs):
    COLLATE_THREADS.append(threading.current_thread().name)
    return dali_collate(data_batch, **kwargs)


def _threads():
    return sum(t.name == 'amd-prefetch' for t in threading.enumerate())


def _wait_no_prefetch_threads(timeout=5.0):
    end = time.monotonic() + timeout
    while _threads() and time.monotonic() < end:
        time.sleep(0.01)
    return _threads()


def test_same_batches_same_order_and_loader_attributes():
    loader = DataLoader(list(range(10)), batch_size=3, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    plain = [b.tolist() for b in loader]
    loader.generator.manual_seed(0)
    wrapped = PrefetchLoader(loader, depth=2)
    assert [b.tolist() for b in wrapped] == plain
    assert len(wrapped) == 4 and wrapped.batch_size == 3 and wrapped.dataset is loader.dataset
    assert _wait_no_prefetch_threads() == 0


def test_prepares_the_next_batch_while_the_consumer_holds_one():
    """While the consumer still works on batch 0, batch 1 gets collated (a
    loader without look-ahead would only collate it when asked)."""
    collated = {i: threading.Event() for i in range(3)}

    def collate(items):
        collated[items[0]].set()
        return items[0]

    loader = DataLoader(list(range(3)), batch_size=1, collate_fn=collate)
    it = iter(PrefetchLoader(loader, depth=1))
    assert next(it) == 0
    assert collated[1].wait(timeout=10)  # prepared before we asked for it
    assert [next(it), next(it)] == [1, 2]
    with pytest.raises(StopIteration):
        next(it)
    plain = iter(loader)
    for e in collated.values():
        e.clear()
    assert next(plain) == 0 and not collated[1].wait(timeout=0.3)


def test_error_is_raised_at_its_batch_with_its_type():
    def collate(items):
        if items[0] == 2:
            raise FileNotFoundError(f'clip_{items[0]:03d}.mp4 is missing')
        return items[0]

    got = []
    with pytest.raises(FileNotFoundError, match='clip_002.mp4 is missing'):
        for b in PrefetchLoader(DataLoader(list(range(5)), batch_size=1, collate_fn=collate), 2):
            got.append(b)
    assert got == [0, 1]
    assert _wait_no_prefetch_threads() == 0


def test_leaving_early_stops_the_thread():
    calls = []

    def collate(items):
        calls.append(items[0])
        return items[0]

    for b in PrefetchLoader(DataLoader(list(range(100)), batch_size=1, collate_fn=collate), 2):
        if b == 3:
            break
    assert _wait_no_prefetch_threads() == 0
    assert len(calls) <= 3 + 1 + 2 + 1  # consumed, queue depth, one in hand at most


def test_bad_depth_rejected():
    with pytest.raises(ValueError, match='prefetch depth must be >= 1, got 0'):
        PrefetchLoader([], 0)


def test_runner_with_prefetch_trains_to_the_same_weights(motion_data, tmp_path):
    """The tiny DALI config (DALI CPU decoding, num_workers=0) through the
    Runner, one epoch with train_cfg.prefetch=2 and one without: identical
    weights, so prefetching changes when batches are made, not what."""
    from conftest import tiny_config
    from mmengine.runner import Runner
    states = {}
    for prefetch in (0, 2):
        cfg = tiny_config('amd_tiny_motion_dali.py', motion_data, tmp_path / f'p{prefetch}', **{
            'model.teacher.checkpoint': None, 'train_cfg.max_epochs': 1,
            'train_cfg.prefetch': prefetch, 'randomness.seed': 0,
            'train_dataloader.collate_fn.type': 'thread_recording_dali_collate'})
        COLLATE_THREADS.clear()
        runner = Runner.from_cfg(cfg)
        runner.train()
        assert runner.iter == 3
        assert COLLATE_THREADS == 3 * ['amd-prefetch' if prefetch else 'MainThread']
        states[prefetch] = {k: v.clone() for k, v in runner.model.state_dict().items()}
    assert states[0].keys() == states[2].keys()
    for k in states[0]:
        assert torch.equal(states[0][k], states[2][k]), k
    assert _wait_no_prefetch_threads() == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason='the stream hand-over needs CUDA')
def test_cuda_batches_are_complete_when_the_consumer_reads_them():
    """Batches copied to the GPU on the prefetch thread's stream are read on
    the default stream as soon as they arrive: every value must be there."""
    dev = torch.device('cuda')
    torch.cuda.init()

    def collate(items):
        host = torch.full((1 << 22,), items[0] % 251, dtype=torch.uint8).pin_memory()
        return items[0], host.to(dev, non_blocking=True)

    w = torch.randn(2048, 2048, device=dev)
    for i, (k, x) in enumerate(PrefetchLoader(DataLoader(list(range(50)), batch_size=1,
                                                         collate_fn=collate), 2)):
        assert k == i and bool((x == k % 251).all()), k
        for _ in range(4):
            w = (w @ w).clamp_(-1, 1)


def test_negative_prefetch_named_in_the_error(motion_data, tmp_path):
    from conftest import tiny_config
    from mmengine.runner import Runner
    cfg = tiny_config('amd_tiny_motion_dali.py', motion_data, tmp_path, **{
        'model.teacher.checkpoint': None, 'train_cfg.prefetch': -1})
    with pytest.raises(ValueError, match='train_cfg.prefetch must be >= 0, got -1'):
        Runner.from_cfg(cfg).train()
