"""Config handling shared by tools/train.py and tools/test.py."""
import os.path as osp
from typing import Optional


def load_config(config: str, cfg_options: dict, launcher: str, work_dir: Optional[str]):
    """``config`` with the command line's ``--cfg-options``, launcher and work
    dir (default ``work_dirs/<config name>``, as mmaction2's tools)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if work_dir:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


def cpu_distributed(cfg) -> None:
    """Without CUDA, NCCL cannot run: gloo, and a DDP wrapper that passes no
    device ids (CPU runs: the tests, the demo)."""
    import torch
    if torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.launcher != 'none' and 'model_wrapper_cfg' not in cfg:
        cfg.model_wrapper_cfg = dict(type='CPUSafeDistributedDataParallel')
