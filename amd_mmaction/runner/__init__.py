from .ddp import CPUSafeDistributedDataParallel
from .hooks import BadClipLogHook
from .loops import ResumableEpochBasedTrainLoop
from .prefetch import PrefetchLoader

__all__ = ['BadClipLogHook', 'CPUSafeDistributedDataParallel', 'PrefetchLoader',
           'ResumableEpochBasedTrainLoop']
