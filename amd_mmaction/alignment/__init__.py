from amd_mmaction.alignment.aligner import MANNERS, FeatureAligner
from amd_mmaction.alignment.generator import FeatureGenerator

__all__ = ['MANNERS', 'FeatureAligner', 'FeatureGenerator']
