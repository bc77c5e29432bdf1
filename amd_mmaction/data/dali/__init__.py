"""DALI video loading (GPU NVDEC, or CPU for VP8/VP9/MJPEG), as an
alternative to mmaction2's decord pipeline; see docs/dali.md.

Importing this package registers ``ProbeVideo``, ``DALIViews``,
``PackDALIPlan`` (TRANSFORMS), ``DALIVideoDataset`` (DATASETS) and
``dali_collate`` (FUNCTIONS); DALI itself is imported only when a batch is
decoded (``require_dali`` names the package to install when it is absent).
"""
from amd_mmaction.data.dali.decode import ROUTED, dali_collate, decode_dali, decode_decord, resolve_device
from amd_mmaction.data.dali.dataset import (CPU_CODECS, GPU_CODECS, DALIVideoDataset, DALIViews, PackDALIPlan,
                   ProbeVideo)
from amd_mmaction.data.dali.require import INSTALL_HINT, MISSING_REASON, DALIMissing, require_dali

__all__ = ['CPU_CODECS', 'DALIMissing', 'DALIVideoDataset', 'DALIViews', 'GPU_CODECS',
           'INSTALL_HINT', 'MISSING_REASON', 'PackDALIPlan', 'ProbeVideo', 'ROUTED',
           'dali_collate', 'decode_dali', 'decode_decord', 'require_dali', 'resolve_device']
