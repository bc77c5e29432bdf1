"""The demo's transfer stage: pre-training checkpoint -> exported mmaction2
checkpoint -> fine-tuning through the Runner -> multi-view test."""
import os
import os.path as osp
import time
from typing import Dict, Optional

from mmengine.config import Config

from amd_mmaction.weights.mmaction import export_checkpoint

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_FINETUNE = osp.join(ROOT, 'configs', 'tiny', 'finetune_tiny_motion.py')


def finetune_config(data: Dict[str, str], work_dir: str, config: str = TINY_FINETUNE,
                    load_from: Optional[str] = None, pretrained: Optional[str] = None,
                    **overrides) -> Config:
    """``config`` pointed at a motion data set (``make_motion_dataset``'s
    dict), starting from an exported checkpoint (``load_from``) or a
    pre-training one (``pretrained``, converted by ``AMDPretrained``).
    ``overrides`` are dotted cfg-options."""
    cfg = Config.fromfile(config)
    opts = {'work_dir': work_dir, 'load_from': load_from,
            'model.backbone.init_cfg.checkpoint': pretrained,
            # Runners in one process need their own logger / visualizer names.
            'experiment_name': f'{osp.basename(osp.normpath(work_dir))}_'
                               f'{time.strftime("%Y%m%d_%H%M%S")}_{os.getpid()}'}
    for split, loader in (('train', 'train_dataloader'), ('val', 'val_dataloader'),
                          ('val', 'test_dataloader')):
        opts[f'{loader}.dataset.ann_file'] = data[split]
        opts[f'{loader}.dataset.data_prefix.video'] = data['root']
    opts.update(overrides)
    cfg.merge_from_dict(opts)
    return cfg


def export_and_finetune(pretrain_ckpt: str, data: Dict[str, str], work_dir: str,
                        config: str = TINY_FINETUNE, threads: Optional[int] = 1,
                        **overrides) -> dict:
    """Export ``pretrain_ckpt`` for the backbone of ``config``, fine-tune
    from it with the Runner and run the config's multi-view test.

    ``threads``: torch intra-op threads while it runs (restored after). The
    tiny model's ops are too small to gain from a second thread, and on a
    busy 2-core machine two spinning OpenMP threads made each step 4-10x
    slower than one; None keeps the current setting.

    Returns dict(top1, top5, mean1 (mean class accuracy), val (last
    validation metrics), exported (path), export (conversion report),
    seconds).
    """
    import torch
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _export_and_finetune(pretrain_ckpt, data, work_dir, config, overrides)
    finally:
        torch.set_num_threads(previous)


def _export_and_finetune(pretrain_ckpt, data, work_dir, config, overrides):
    from mmengine.runner import Runner
    start = time.time()
    os.makedirs(work_dir, exist_ok=True)
    cfg = finetune_config(data, work_dir, config, **overrides)
    bb = cfg.model.backbone
    exported = osp.join(work_dir, 'exported_backbone.pth')
    info = export_checkpoint(pretrain_ckpt, exported, num_frames=bb.num_frames,
                             img_size=bb.img_size, num_heads=bb.num_heads)
    cfg.load_from = exported
    runner = Runner.from_cfg(cfg)
    runner.train()
    # RuntimeInfoHook keeps the last validation metrics as 'val/<metric>'.
    val = {k[len('val/'):]: float(v.current()) for k, v in runner.message_hub.log_scalars.items()
           if k.startswith('val/') and not k.endswith('time')}
    test = runner.test()
    return dict(top1=float(test['acc/top1']), top5=float(test['acc/top5']),
                mean1=float(test['acc/mean1']), val=val, exported=exported,
                export=info, seconds=time.time() - start)
