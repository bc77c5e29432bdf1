from .transforms import AsymmetricTubeMask, RepeatedAugment
from .tube import check_mask_config, num_masked, sample_tube_masks

__all__ = ['AsymmetricTubeMask', 'RepeatedAugment', 'check_mask_config',
           'num_masked', 'sample_tube_masks']
