"""DALI video loading (GPU NVDEC, or CPU for VP8/VP9/MJPEG), as an
alternative to mmaction2's decord pipeline; see docs/dali.md.

Importing this package registers ``ProbeVideo``, ``DALIViews``,
``PackDALIPlan`` (TRANSFORMS), ``DALIVideoDataset`` (DATASETS) and
``dali_collate`` (FUNCTIONS); DALI itself is imported only when a batch is
decoded.
"""
from .decode import ROUTED, dali_collate, decode_dali, decode_decord, resolve_device
from .plan import (CPU_CODECS, GPU_CODECS, DALIVideoDataset, DALIViews, PackDALIPlan,
                   ProbeVideo)

__all__ = ['CPU_CODECS', 'GPU_CODECS', 'DALIVideoDataset', 'DALIViews', 'PackDALIPlan',
           'ProbeVideo', 'ROUTED', 'dali_collate', 'decode_dali', 'decode_decord',
           'resolve_device']
