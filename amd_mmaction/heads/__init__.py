from amd_mmaction.heads.reconstruction import (TARGET_NORMS, ReconstructionHead, normalise,
                                               patchify, tubelet_target, unnormalise,
                                               unpatchify)

__all__ = ['TARGET_NORMS', 'ReconstructionHead', 'normalise', 'patchify', 'tubelet_target',
           'unnormalise', 'unpatchify']
