from .feature import FeatureAlignmentLoss
from .pixel import PixelReconstructionLoss, tubelet_target

__all__ = ['FeatureAlignmentLoss', 'PixelReconstructionLoss', 'tubelet_target']
