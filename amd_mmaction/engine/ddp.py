"""DDP wrapper that also runs on CPU-only machines."""
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUSafeDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's Runner always passes ``device_ids=[LOCAL_RANK]``, which
    DDP rejects for CPU modules (gloo runs, CI). Drop it there."""

    def __init__(self, module, device_ids=None, **kwargs):
        if not any(p.is_cuda for p in module.parameters()):
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)
