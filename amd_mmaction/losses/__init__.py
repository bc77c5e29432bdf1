from amd_mmaction.losses.feature import FeatureAlignmentLoss
from amd_mmaction.losses.pixel import PixelReconstructionLoss, tubelet_target

__all__ = ['FeatureAlignmentLoss', 'PixelReconstructionLoss', 'tubelet_target']
