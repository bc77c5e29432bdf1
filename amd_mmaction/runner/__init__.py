from .ddp import CPUSafeDistributedDataParallel
from .loops import ResumableEpochBasedTrainLoop

__all__ = ['CPUSafeDistributedDataParallel', 'ResumableEpochBasedTrainLoop']
