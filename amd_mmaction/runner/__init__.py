from .ddp import CPUSafeDistributedDataParallel

__all__ = ['CPUSafeDistributedDataParallel']
