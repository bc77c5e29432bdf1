"""Video recognition transfer: the multi-view training head (export and
the ``AMDPretrained`` initialiser live in :mod:`amd_mmaction.weights`)."""
from amd_mmaction.transfer.recognition.head import MultiViewTimeSformerHead

__all__ = ['MultiViewTimeSformerHead']
