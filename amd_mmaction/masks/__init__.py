from amd_mmaction.masks.transforms import AsymmetricTubeMask
from amd_mmaction.masks.tube import check_mask_config, num_masked, sample_tube_masks

__all__ = ['AsymmetricTubeMask', 'check_mask_config', 'num_masked', 'sample_tube_masks']
