"""The training stages shared by the reproduction protocol and the
quick-start demo (tools/quickstart.py): a config of ``configs/`` pointed at a
motion data set with its schedule refitted to the stage's epochs,
pre-training through mmengine's Runner, and a pre-training checkpoint ->
exported mmaction2 checkpoint -> fine-tuning -> multi-view test."""
import glob
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional

from mmengine.config import Config

from amd_mmaction.config_files import config_file
from amd_mmaction.reproduce.protocol import resolve_config
from amd_mmaction.weights.mmaction import export_checkpoint

# Stage configs are names relative to configs/ (resolved with config_file).
TINY_FINETUNE = config_file('tiny/finetune_tiny_motion.py')
STUDENT_CONFIGS = {'none': 'tiny/videomae_student_tiny_motion.py'}
DISTILLED_CONFIG = 'tiny/amd_tiny_motion.py'
# The student's mask transform inside RepeatedAugment (configs/tiny/_tiny_base.py).
MASK_KEY = 'train_dataloader.dataset.pipeline.3.transforms.3'


def schedule_for(cfg, epochs: int) -> list:
    """The config's warm-up + cosine schedule refitted to ``epochs``: warm-up
    keeps its length (cut to ``epochs``), the cosine fills the rest (and is
    dropped when nothing is left)."""
    scheds = [dict(s) for s in cfg.param_scheduler]
    kinds = [s['type'] for s in scheds]
    if kinds != ['LinearLR', 'CosineAnnealingLR']:
        raise ValueError(f'expected a LinearLR warm-up then CosineAnnealingLR, got {kinds}')
    warm, cos = scheds
    warm['end'] = min(warm['end'], epochs)
    if warm['end'] >= epochs:
        return [warm]
    cos.update(begin=warm['end'], end=epochs, T_max=epochs - warm['end'])
    return [warm, cos]


def unique_name(work_dir: str) -> str:
    """An experiment name of its own: Runners in one process need their own
    logger / visualizer instances."""
    tail = '_'.join(osp.normpath(work_dir).split(os.sep)[-3:])
    return f'{tail}_{time.strftime("%H%M%S")}_{time.monotonic_ns() % 10**6}'


def epoch_options(cfg, epochs: int, batch_size: int, seed: int, work_dir: str) -> dict:
    """cfg-options of a protocol stage: epochs, schedule, batch, seed, no
    intermediate validation, one checkpoint at the end."""
    return {
        'work_dir': work_dir, 'experiment_name': unique_name(work_dir),
        'train_cfg.max_epochs': epochs, 'train_cfg.val_interval': epochs + 1,
        'param_scheduler': schedule_for(cfg, epochs),
        'default_hooks.checkpoint.interval': epochs,
        'train_dataloader.batch_size': batch_size,
        'randomness.seed': seed,
    }


def train_data_options(data: Dict[str, str]) -> dict:
    """cfg-options training on ``data['train']`` (videos under ``data['root']``)."""
    return {'train_dataloader.dataset.ann_file': data['train'],
            'train_dataloader.dataset.data_prefix.video': data['root']}


def pretrain_config(config: str, data: Dict[str, str], work_dir: str, epochs: int,
                    batch_size: Optional[int] = None, seed: Optional[int] = None,
                    extra: Optional[dict] = None) -> Config:
    """The pre-training ``config`` (:func:`.protocol.resolve_config`) on ``data``
    for ``epochs``, checkpointed at the end, ``extra`` cfg-options last.
    With ``batch_size`` and ``seed`` (the protocol): :func:`epoch_options`;
    without (the demo): the config's own batch, seed and validation."""
    cfg = Config.fromfile(resolve_config(config))
    if batch_size is None or seed is None:
        opts = {'work_dir': work_dir, 'experiment_name': unique_name(work_dir),
                'train_cfg.max_epochs': epochs,
                'default_hooks.checkpoint.interval': epochs,
                'param_scheduler': schedule_for(cfg, epochs)}
    else:
        opts = epoch_options(cfg, epochs, batch_size, seed, work_dir)
    opts.update(train_data_options(data))
    opts.update(extra or {})
    cfg.merge_from_dict(opts)
    mask = cfg.train_dataloader.dataset.pipeline[3].transforms[3]
    if mask.type != 'AsymmetricTubeMask':
        raise ValueError(f'{config}: expected AsymmetricTubeMask at {MASK_KEY}, found '
                         f'{mask.type}; the variant options would land elsewhere')
    return cfg


def variant_options(variant: dict, teacher_ckpt: Optional[str]) -> dict:
    """cfg-options turning the tiny AMD config into a protocol variant."""
    if variant['manner'] == 'none':
        return {f'{MASK_KEY}.mode': 'tube'}
    return {'model.teacher.checkpoint': teacher_ckpt,
            'model.alignment.manner': variant['manner'],
            f'{MASK_KEY}.mode': variant['mask'],
            f'{MASK_KEY}.teacher_ratio': variant['teacher_ratio']}


def resumable(work_dir: str, allowed: bool) -> bool:
    """True when ``work_dir`` holds a checkpoint of an interrupted run of
    this stage to continue from (``allowed``: only the long teacher stage;
    a short stage run again may be redone on a new parent, so it starts
    over). Otherwise the pointer is dropped."""
    from amd_mmaction.engine.hooks.checkpoint import POINTER, resolve_last_checkpoint
    try:
        found = resolve_last_checkpoint(work_dir)
    except FileNotFoundError:  # it names a deleted checkpoint
        found = None
    if found is not None and allowed:
        return True
    if osp.isfile(osp.join(work_dir, POINTER)):
        os.remove(osp.join(work_dir, POINTER))
    return False


def train_runner(cfg, resume: bool = False) -> dict:
    """Train (continuing an interrupted run when ``resume``); return the
    runner, the last checkpoint and the last logged losses."""
    from mmengine.runner import Runner
    # A stage killed mid-way (a stop, a crash) continues from its last
    # checkpoint instead of starting over: the teacher saves every few epochs.
    cfg.resume = resumable(cfg.work_dir, resume)
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = {k[len('train/'):]: float(v.current())
              for k, v in runner.message_hub.log_scalars.items() if k.startswith('train/loss')}
    out = dict(runner=runner, losses=losses,
               checkpoint=osp.join(cfg.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth'))
    if not osp.isfile(out['checkpoint']):
        raise RuntimeError(f'training in {cfg.work_dir} finished without {out["checkpoint"]}')
    return out


# -- logs ------------------------------------------------------------------
def scalar_log(work_dir: str) -> List[dict]:
    """The Runner's ``vis_data/scalars.json`` lines (newest run folder)."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        return []
    with open(files[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def epoch_curve(rows: List[dict], key: str) -> List[List[float]]:
    """[[epoch, mean of ``key`` over that epoch's logged iterations]]."""
    sums: Dict[int, List[float]] = {}
    for r in rows:
        if key in r and 'epoch' in r:
            sums.setdefault(int(r['epoch']), []).append(float(r[key]))
    return [[e, sum(v) / len(v)] for e, v in sorted(sums.items())]


def val_curve(rows: List[dict], key: str = 'acc/top1') -> List[List[float]]:
    """[[epoch, value]] of validation rows (their ``step`` is the epoch)."""
    return [[int(r['step']), float(r[key])] for r in rows if key in r]


# -- transfer --------------------------------------------------------------
def finetune_config(data: Dict[str, str], work_dir: str, config: str = TINY_FINETUNE,
                    load_from: Optional[str] = None, pretrained: Optional[str] = None,
                    **overrides) -> Config:
    """``config`` pointed at a motion data set (``make_motion_dataset``'s
    dict), starting from an exported checkpoint (``load_from``) or a
    pre-training one (``pretrained``, converted by ``AMDPretrained``).
    ``overrides`` are dotted cfg-options."""
    cfg = Config.fromfile(resolve_config(config))
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


def export_for(cfg, pretrain_ckpt: str, work_dir: str) -> dict:
    """Export ``pretrain_ckpt`` for the backbone of the fine-tuning ``cfg``
    into ``work_dir`` and point ``cfg.load_from`` at it; return the
    conversion report."""
    bb = cfg.model.backbone
    exported = osp.join(work_dir, 'exported_backbone.pth')
    info = export_checkpoint(pretrain_ckpt, exported, num_frames=bb.num_frames,
                             img_size=bb.img_size, num_heads=bb.num_heads)
    cfg.load_from = exported
    return info


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
    info = export_for(cfg, pretrain_ckpt, work_dir)
    runner = Runner.from_cfg(cfg)
    runner.train()
    # RuntimeInfoHook keeps the last validation metrics as 'val/<metric>'.
    val = {k[len('val/'):]: float(v.current()) for k, v in runner.message_hub.log_scalars.items()
           if k.startswith('val/') and not k.endswith('time')}
    test = runner.test()
    return dict(top1=float(test['acc/top1']), top5=float(test['acc/top5']),
                mean1=float(test['acc/mean1']), val=val, exported=cfg.load_from,
                export=info, seconds=time.time() - start)
