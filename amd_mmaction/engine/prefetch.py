"""Batches prepared in a background thread while the model trains.

With ``num_workers=0`` (required by DALI GPU decoding: its CUDA output
cannot leave a worker process) the DataLoader collates, and so decodes, in
the training thread: the GPU idles while the next batch is decoded. A
thread in the same process can decode ahead instead; DALI and decord
release the GIL while they decode. CUDA work of the thread (NVDEC output
copies, host-to-device copies) runs on its own stream, and the training
stream waits on an event recorded after each batch before it uses it.
"""
import queue
import threading
from contextlib import nullcontext

import torch

_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def _record_stream(batch, stream) -> None:
    """Tell the caching allocator that ``stream`` uses the batch's CUDA
    tensors (they were allocated on the prefetch stream)."""
    if isinstance(batch, torch.Tensor):
        if batch.is_cuda:
            batch.record_stream(stream)
    elif isinstance(batch, dict):
        for v in batch.values():
            _record_stream(v, stream)
    elif isinstance(batch, (list, tuple)):
        for v in batch:
            _record_stream(v, stream)
    elif hasattr(batch, 'values') and callable(batch.values):  # BaseDataElement
        for v in batch.values():
            _record_stream(v, stream)


class PrefetchLoader:
    """Iterate ``loader`` ``depth`` batches ahead in a daemon thread.

    Same batches, same order, same length; everything else (``sampler``,
    ``batch_sampler``, ``dataset``...) is the wrapped loader's. An
    exception raised while preparing a batch is raised in the consumer at
    that batch, with its original traceback. Leaving the loop early stops
    the thread after the batch it is preparing.

    Batches made ahead draw their random numbers before the training thread
    reaches them (before a checkpoint saved in between, too):
    ``ResumableEpochBasedTrainLoop`` records the pipeline's state with each
    batch, and checkpoints hold the state after the last *trained* one.
    """

    def __init__(self, loader, depth: int = 2):
        if depth < 1:
            raise ValueError(f'prefetch depth must be >= 1, got {depth}')
        self.loader = loader
        self.depth = depth

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):
        if name == 'loader':  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __iter__(self):
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        device = torch.cuda.current_device() if cuda else None
        items: queue.Queue = queue.Queue(self.depth)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    items.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce():
            try:
                stream = None
                if cuda:
                    torch.cuda.set_device(device)  # the current device is per thread
                    stream = torch.cuda.Stream()
                with torch.cuda.stream(stream) if stream is not None else nullcontext():
                    for batch in self.loader:
                        event = None
                        if stream is not None:
                            event = torch.cuda.Event()
                            event.record(stream)
                        if not put((batch, event)):
                            return
                put(_END)
            except BaseException as err:  # handed to the consumer, raised there
                put(_Failure(err))

        thread = threading.Thread(target=produce, name='amd-prefetch', daemon=True)
        thread.start()
        try:
            while True:
                item = items.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                batch, event = item
                if event is not None:
                    current = torch.cuda.current_stream()
                    current.wait_event(event)
                    _record_stream(batch, current)
                yield batch
        finally:
            stop.set()
            thread.join(timeout=60)
