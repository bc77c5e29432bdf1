"""From pre-training to downstream tasks: video recognition (multi-view
head), AVA detection and the ImageMAE setting."""
from amd_mmaction.transfer import ava, image, recognition  # noqa: F401
from amd_mmaction.transfer.recognition import MultiViewTimeSformerHead

__all__ = ['MultiViewTimeSformerHead']
