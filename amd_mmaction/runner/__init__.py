from .checkpointing import CheckpointSaveError, SafeCheckpointHook, install_resolver
from .ddp import CPUSafeDistributedDataParallel
from .hooks import BadClipLogHook
from .loops import ResumableEpochBasedTrainLoop
from .prefetch import PrefetchLoader

install_resolver()  # last_checkpoint resolves in the work dir it is in

__all__ = ['BadClipLogHook', 'CPUSafeDistributedDataParallel', 'CheckpointSaveError',
           'PrefetchLoader', 'ResumableEpochBasedTrainLoop', 'SafeCheckpointHook']
