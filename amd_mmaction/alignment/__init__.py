from .aligner import MANNERS, FeatureAligner
from .generator import FeatureGenerator

__all__ = ['MANNERS', 'FeatureAligner', 'FeatureGenerator']
