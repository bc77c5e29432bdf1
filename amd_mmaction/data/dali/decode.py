"""The pixel half of the DALI path: decode plans (see ``plan.py``) in one
DALI batch, on the GPU (NVDEC, ``mixed``) when CUDA is there, else on CPU.

``dali_collate`` is registered as a collate function, so mmengine's Runner
builds a plain torch DataLoader (DefaultSampler: sharding, seed, resume)
whose batches DALI decodes. On CPU, clips whose codec DALI's CPU decoder
cannot read (anything but VP8/VP9/MJPEG) go to decord with the *same*
plan (mmaction's ``Fuse`` does the crop / resize / flip), so a mixed data
set trains. On GPU, clips NVDEC cannot take (frames under 128 pixels a
side) go to DALI's CPU decoder (or decord). Routed clips are counted in
``ROUTED`` and logged once per reason.
"""
import logging
from collections import Counter
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.registry import FUNCTIONS

from amd_mmaction.data.probe import BadClipError
from amd_mmaction.data.robust import BadClipPolicy
from amd_mmaction.data.dali.dataset import CPU_CODECS, GPU_CODECS
from amd_mmaction.data.dali.require import DALIMissing, require_dali

# clips not decoded where asked, by (asked device, why, decoder used)
ROUTED: Counter = Counter()
NVDEC_MIN_SIZE = 128
_PIPES: Dict[tuple, object] = {}
_POLICIES: Dict[str, BadClipPolicy] = {}
_LAST_ERROR: List[Optional[BadClipError]] = [None]


def resolve_device(device: str = 'auto') -> str:
    """``'gpu'`` (NVDEC) when CUDA is available in the main process, else
    ``'cpu'``; DALI GPU output cannot leave a DataLoader worker, so
    workers decode on CPU."""
    if device not in ('auto', 'cpu', 'gpu'):
        raise ValueError(f"DALI device {device!r} is not 'auto', 'cpu' or 'gpu'")
    if device != 'auto':
        return device
    in_worker = torch.utils.data.get_worker_info() is not None
    return 'gpu' if torch.cuda.is_available() and not in_worker else 'cpu'


def _build_pipeline(num_views: int, batch_size: int, device: str,
                    device_id: Optional[int], num_threads: int):
    require_dali('The DALI decoding pipeline (dali_collate / decode_dali)')
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=batch_size, num_threads=num_threads,
                  device_id=device_id, exec_async=False, exec_pipelined=False,
                  prefetch_queue_depth=1)
    def pipe():
        encoded = fn.external_source(name='encoded', dtype=types.UINT8, ndim=1)
        frames = fn.external_source(name='frames', dtype=types.INT32, ndim=1)
        video = fn.decoders.video(encoded, frames=frames,
                                  device='mixed' if device == 'gpu' else 'cpu')
        views = []
        for v in range(num_views):
            start = fn.external_source(name=f'roi_start{v}', dtype=types.INT32, ndim=1)
            end = fn.external_source(name=f'roi_end{v}', dtype=types.INT32, ndim=1)
            size = fn.external_source(name=f'size{v}', dtype=types.FLOAT, ndim=1)
            hflip = fn.external_source(name=f'hflip{v}', dtype=types.INT32, ndim=0)
            vflip = fn.external_source(name=f'vflip{v}', dtype=types.INT32, ndim=0)
            # crop, then bilinear resize without antialiasing: mmaction's
            # Fuse (mmcv.imresize = cv2 INTER_LINEAR). Cropping first keeps
            # border pixels equal too (a resize ROI would blend in pixels
            # from outside the crop where cv2 repeats the crop's edge).
            x = fn.slice(video, start=start, end=end, axis_names='HW')
            x = fn.resize(x, size=size, antialias=False,
                          interp_type=types.INTERP_LINEAR)
            x = fn.flip(x, horizontal=hflip, vertical=vflip)
            views.append(fn.transpose(x, perm=[3, 0, 1, 2]))  # FHWC -> CFHW
        return fn.stack(*views)  # (V, C, F, H, W)

    p = pipe()
    p.build()
    return p


def _pipeline(num_views, batch_size, device, num_threads):
    device_id = torch.cuda.current_device() if device == 'gpu' else None
    key = (num_views, device, device_id, num_threads)
    cached = _PIPES.get(key)
    if cached is None or cached.max_batch_size < batch_size:
        _PIPES[key] = _build_pipeline(num_views, max(batch_size, 1), device,
                                      device_id, num_threads)
    return _PIPES[key], key


def _to_torch(tl, device: str) -> List[torch.Tensor]:
    if device == 'cpu':
        return [torch.from_numpy(np.array(tl[i])) for i in range(len(tl))]
    from nvidia.dali.plugin.pytorch import feed_ndarray
    out = []
    stream = torch.cuda.current_stream()
    for i in range(len(tl)):
        t = tl[i]
        dst = torch.empty(tuple(t.shape()), dtype=torch.uint8, device='cuda')
        feed_ndarray(t, dst, cuda_stream=stream)
        out.append(dst)
    return out


def _feed(pipe, plans: Sequence[dict]) -> None:
    views = len(plans[0]['views'])
    pipe.feed_input('encoded', [np.fromfile(p['filename'], dtype=np.uint8) for p in plans])
    pipe.feed_input('frames', [np.asarray(p['frame_inds'], np.int32) for p in plans])
    for v in range(views):
        geo = [p['views'][v] for p in plans]
        pipe.feed_input(f'roi_start{v}', [np.array(g['crop_bbox'][1::-1], np.int32)
                                          for g in geo])  # (top, left)
        pipe.feed_input(f'roi_end{v}', [np.array(g['crop_bbox'][:1:-1], np.int32)
                                        for g in geo])  # (bottom, right)
        pipe.feed_input(f'size{v}', [np.array(g['size'], np.float32) for g in geo])
        pipe.feed_input(f'hflip{v}', [np.array(g['flip'] == 'horizontal', np.int32)
                                      for g in geo])
        pipe.feed_input(f'vflip{v}', [np.array(g['flip'] == 'vertical', np.int32)
                                      for g in geo])


def decode_dali(plans: Sequence[dict], device: str = 'cpu',
                num_threads: int = 2) -> List[torch.Tensor]:
    """Decode plans in one DALI batch -> one (V, C, F, H, W) uint8 tensor
    each (F = all frame indices of the plan). Raises on any failure."""
    views = {len(p['views']) for p in plans}
    if len(views) != 1:
        raise ValueError(f'plans of one batch have different view counts {views}')
    pipe, key = _pipeline(views.pop(), len(plans), device, num_threads)
    try:
        _feed(pipe, plans)
        (out,) = pipe.run()
    except Exception:
        _PIPES.pop(key, None)  # a failed DALI pipeline is not reused
        raise
    return _to_torch(out, device)


def decode_decord(plan: dict) -> torch.Tensor:
    """The same plan through decord + mmaction's ``Fuse`` (the reference
    for tests, and the route for codecs DALI's CPU decoder lacks)."""
    import decord
    from mmaction.datasets.transforms import Fuse
    reader = decord.VideoReader(plan['filename'], num_threads=1)
    frames = reader.get_batch(np.asarray(plan['frame_inds'], np.int64)).asnumpy()
    views = []
    for g in plan['views']:
        l, t, r, b = g['crop_bbox']
        lazy = dict(crop_bbox=np.array([l, t, r, b], np.float32), interpolation=None,
                    flip=g['flip'] is not None, flip_direction=g['flip'])
        res = Fuse()(dict(imgs=[f.copy() for f in frames], img_shape=tuple(g['size']),
                          lazy=lazy))
        views.append(np.stack(res['imgs']).transpose(3, 0, 1, 2))
    return torch.from_numpy(np.ascontiguousarray(np.stack(views)))


def _as_clips(x: torch.Tensor, clip_len: int) -> torch.Tensor:
    """(V, C, M*L, H, W) -> (V*M, C, L, H, W): FormatShape('NCTHW') per view,
    views concatenated, as RepeatedAugment gives on the decord path."""
    v, c, f, h, w = x.shape
    m = f // clip_len
    return x.view(v, c, m, clip_len, h, w).transpose(1, 2).reshape(v * m, c, clip_len, h, w)


def _policy(plan: dict) -> BadClipPolicy:
    """The plan's ``on_bad_clip``, counting into its data set's table when
    the plan carries one (DALIVideoDataset), else into a module-wide one."""
    name, shared = plan['on_bad_clip'], plan.get('bad_clip_counts')
    if shared is not None:
        return BadClipPolicy(name, shared)
    if name not in _POLICIES:
        _POLICIES[name] = BadClipPolicy(name)
    return _POLICIES[name]


def _decode_robust(plans, device, num_threads):
    """DALI on the whole batch; on failure, clip by clip so that only the
    bad clip meets the policy. Returns a tensor or None per plan."""
    try:
        return decode_dali(plans, device, num_threads)
    except DALIMissing:
        raise  # not a bad clip: no clip can be decoded
    except Exception as err:
        if len(plans) == 1:
            bad = BadClipError(plans[0]['filename'], 'decode', f'DALI: {err}'.strip())
            _LAST_ERROR[0] = bad
            _policy(plans[0]).handle(bad)  # raises under 'fail'
            return [None]
    return [x for p in plans for x in _decode_robust([p], device, num_threads)]


def _route(plan: dict, dev: str) -> str:
    """Which decoder takes a clip: ``'gpu'`` (NVDEC), ``'cpu'`` (DALI CPU)
    or ``'decord'``. NVDEC rejects frames under 128 pixels a side (seen on
    an H100: "Video is too small ... supported: 128x128"); such clips, and
    codecs a backend lacks, go to the next decoder that reads them."""
    codec = plan['codec']
    if dev == 'gpu':
        small = min(plan.get('original_shape') or (NVDEC_MIN_SIZE,) * 2) < NVDEC_MIN_SIZE
        if codec in GPU_CODECS and not small:
            return 'gpu'
        why = f'frames under {NVDEC_MIN_SIZE}px' if small else f'codec {codec!r}'
    else:
        why = f'codec {codec!r}'
    where = 'cpu' if codec in CPU_CODECS else 'decord'
    key = (dev, why, where)
    if not ROUTED[key]:
        print_log(f'DALI {dev} decoder cannot take {why} ({plan["filename"]}); '
                  f'such clips are decoded by {"DALI CPU" if where == "cpu" else "decord"}',
                  logger='current', level=logging.WARNING)
    ROUTED[key] += 1
    return where


@FUNCTIONS.register_module()
def dali_collate(data_batch: Sequence[dict], device: str = 'auto',
                 num_threads: int = 2) -> dict:
    """Collate ``DALIVideoDataset`` items: decode their plans (DALI batch,
    decord for routed codecs) into ``inputs`` as ``pseudo_collate`` would
    give them: a list of (V, C, T, H, W) uint8 tensors, one per clip, beside
    the list of ``data_samples``. Clips that fail to decode meet their
    ``on_bad_clip`` policy (skip/pad: dropped from the batch and counted)."""
    dev = resolve_device(device)
    plans = [d['inputs'] for d in data_batch]
    if not all(isinstance(p, dict) and 'views' in p for p in plans):
        raise TypeError('dali_collate needs DALIVideoDataset items (pipeline '
                        'ending in PackDALIPlan)')
    outs: List[Optional[torch.Tensor]] = [None] * len(plans)
    groups = {'gpu': [], 'cpu': []}  # DALI decoder -> plan indices
    for i, p in enumerate(plans):
        where = _route(p, dev)
        if where in groups:
            groups[where].append(i)
            continue
        try:
            outs[i] = decode_decord(p)
        except Exception as err:
            _policy(p).handle(
                BadClipError(p['filename'], 'decode', f'decord: {err}'))
    for where, idx in groups.items():
        if idx:
            for i, x in zip(idx, _decode_robust([plans[i] for i in idx], where,
                                                num_threads)):
                outs[i] = x
    if dev == 'gpu':
        outs = [x if x is None else x.cuda(non_blocking=True) for x in outs]
    inputs, samples = [], []
    for x, p, d in zip(outs, plans, data_batch):
        if x is not None:
            inputs.append(_as_clips(x, p['clip_len']))
            samples.append(d['data_samples'])
    if not inputs:
        raise RuntimeError('every clip of this batch failed to decode ('
                           + ', '.join(p['filename'] for p in plans)
                           + f'); last error: {_LAST_ERROR[0]}')
    return dict(inputs=inputs, data_samples=samples)
