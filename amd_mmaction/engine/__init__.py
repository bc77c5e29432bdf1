"""Training machinery around mmengine's Runner: the resumable epoch loop,
batches prepared ahead, CPU-safe DDP, hooks (checkpoint saving, bad-clip
log, data-list checks, freezing) and the pre-flight checks that tools run
before a Runner writes anything."""
from amd_mmaction.engine.ddp import CPUSafeDistributedDataParallel
from amd_mmaction.engine.hooks import (BadClipLogHook, CheckpointSaveError, DataListCheckHook,
                                       FreezeModulesHook, SafeCheckpointHook, install_resolver)
from amd_mmaction.engine.loops import ResumableEpochBasedTrainLoop
from amd_mmaction.engine.prefetch import PrefetchLoader

install_resolver()  # last_checkpoint resolves in the work dir it is in

__all__ = ['BadClipLogHook', 'CPUSafeDistributedDataParallel', 'CheckpointSaveError',
           'DataListCheckHook', 'FreezeModulesHook', 'PrefetchLoader',
           'ResumableEpochBasedTrainLoop', 'SafeCheckpointHook']
