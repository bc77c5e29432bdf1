from amd_mmaction.losses.feature import FeatureAlignmentLoss
from amd_mmaction.losses.pixel import PixelReconstructionLoss

__all__ = ['FeatureAlignmentLoss', 'PixelReconstructionLoss']
