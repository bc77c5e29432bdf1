from amd_mmaction.pretrain.amd import AMDPretrainer, mask_indices

__all__ = ['AMDPretrainer', 'mask_indices']
