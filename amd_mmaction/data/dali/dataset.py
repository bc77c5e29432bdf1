"""The Python half of the DALI path: per clip, decide *what* to decode.

mmaction2's own transforms choose frame indices (SampleFrames,
UniformSample, ...) and, in their ``lazy=True`` mode, geometry (Resize,
MultiScaleCrop, RandomResizedCrop, CenterCrop, Flip record a crop box in
original-frame coordinates, an output size and a flip instead of touching
pixels). The same laws as the decord pipeline therefore hold by
construction; DALI (see ``decode.py``) then plays the part of mmaction's
``Fuse``: decode those frames, crop, resize, flip, lay out as NCTHW.
"""
import copy
from typing import Dict, List

import numpy as np
from mmcv.transforms import BaseTransform

from mmaction.datasets.transforms import PackActionInputs
from mmaction.registry import DATASETS, TRANSFORMS
from amd_mmaction.data.transforms.repeat import RepeatedAugment
from amd_mmaction.data.probe import probe_video
from amd_mmaction.data.robust import RobustVideoDataset
from amd_mmaction.data.dali.require import require_dali

# codecs each DALI backend decodes (DALI 2.4 docs; environment.md)
CPU_CODECS = frozenset({'vp8', 'vp9', 'mjpeg'})
GPU_CODECS = CPU_CODECS | {'h264', 'hevc', 'av1', 'mpeg4'}


@TRANSFORMS.register_module()
class ProbeVideo(BaseTransform):
    """DecordInit's stand-in: sets ``total_frames``, ``img_shape``,
    ``original_shape`` and ``video_codec`` from the container, without
    decoding (raises ``BadClipError`` for missing / unreadable files)."""

    def transform(self, results: Dict) -> Dict:
        info = probe_video(results['filename'])
        results['total_frames'] = info.num_frames
        results['img_shape'] = (info.height, info.width)
        results['original_shape'] = (info.height, info.width)
        results['video_codec'] = info.codec
        results.setdefault('start_index', 0)
        return results


def _lazy_view(results: Dict) -> Dict:
    """One view's geometry from the mmaction ``lazy`` record."""
    lazy = results.get('lazy')
    if lazy is None:
        raise ValueError('DALIViews transforms must leave a lazy record: build '
                         'Resize / crops / Flip with lazy=True')
    h, w = results['img_shape']
    oh, ow = lazy['original_shape']
    # Fuse's rounding, clipped to the frame
    l, t, r, b = np.asarray(lazy['crop_bbox'], dtype=np.float64).round().astype(int)
    l, t = max(l, 0), max(t, 0)
    r, b = min(r, ow), min(b, oh)
    if r <= l or b <= t:
        raise ValueError(f'empty crop box {lazy["crop_bbox"]} on a {oh}x{ow} frame')
    direction = lazy['flip_direction'] if lazy['flip'] else None
    if direction not in (None, 'horizontal', 'vertical'):
        raise ValueError(f'flip direction {direction!r} is not supported by the DALI path')
    return dict(crop_bbox=(int(l), int(t), int(r), int(b)), size=(int(h), int(w)),
                flip=direction)


@TRANSFORMS.register_module()
class DALIViews(RepeatedAugment):
    """``RepeatedAugment`` for the DALI path: runs the (lazy) view
    transforms ``num_views`` times on copies of one clip's record and
    collects each view's geometry in ``dali_views``; masks and any other
    per-view array in ``stack_keys`` are stacked on axis 0, as
    ``RepeatedAugment`` does."""

    def _view_input(self, results: Dict) -> Dict:
        return copy.deepcopy(results)  # no frames yet: the record is small

    def _merge(self, views: List[Dict]) -> Dict:
        merged = views[0]
        merged['dali_views'] = [_lazy_view(v) for v in views]
        merged.pop('lazy', None)
        return merged


@TRANSFORMS.register_module()
class PackDALIPlan(PackActionInputs):
    """``PackActionInputs`` whose ``inputs`` is the decode plan (file,
    frame indices, per-view geometry) instead of pixels; ``dali_collate``
    turns plans into the (V, C, T, H, W) tensor. Labels, masks
    (``algorithm_keys``) and metainfo are packed by mmaction's own code."""

    def transform(self, results: Dict) -> Dict:
        inds = np.asarray(results['frame_inds'], dtype=np.int64).reshape(-1)
        inds = inds - int(results.get('start_index', 0))  # 0-based for decoders
        plan = dict(filename=results['filename'], frame_inds=inds.astype(np.int32),
                    clip_len=int(results.get('clip_len', len(inds))),
                    views=results['dali_views'], codec=results.get('video_codec'),
                    original_shape=tuple(results.get('original_shape', ())),
                    on_bad_clip=results.get('on_bad_clip', 'skip'),
                    bad_clip_counts=results.get('bad_clip_counts'))
        results = dict(results, imgs=np.zeros(0, dtype=np.uint8))
        packed = super().transform(results)
        packed['inputs'] = plan
        return packed


@DATASETS.register_module()
class DALIVideoDataset(RobustVideoDataset):
    """VideoDataset whose items are decode plans for ``dali_collate``.

    Annotation parsing, ``on_bad_clip`` and sharding (DefaultSampler) are
    those of :class:`RobustVideoDataset`; use with
    ``collate_fn=dict(type='dali_collate')``. The pipeline is the decord
    one with ``DecordInit``/``DecordDecode`` replaced by ``ProbeVideo``,
    geometry transforms built with ``lazy=True``, ``RepeatedAugment``
    replaced by ``DALIViews`` (without ``FormatShape``) and
    ``PackActionInputs`` by ``PackDALIPlan``.
    """

    def __init__(self, *args, **kwargs):
        # fail when the config is built, not in the first batch
        require_dali('DALIVideoDataset (the DALI data path)')
        super().__init__(*args, **kwargs)

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info['on_bad_clip'] = self.policy.policy
        # decode failures met in dali_collate (same process as this item)
        # count into this data set's table
        info['bad_clip_counts'] = self.policy.shared
        return info
