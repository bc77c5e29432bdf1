"""Runs the reproduction protocol stage by stage, in this process, through
mmengine's Runner: data -> teacher -> students -> fine-tune / linear probe.

Each finished stage appends one JSON line to ``<out>/records.jsonl``; a
rerun skips the stages already recorded (``resume``), so a killed run goes
on where it stopped. The protocol itself is saved to ``<out>/protocol.json``
and a rerun with a different protocol into the same folder is refused.
"""
import gc
import json
import os
import os.path as osp
import time
from typing import Callable, Dict, List, Optional

import torch

from amd_mmaction.reproduce.v1_protocol import plan_stages, stage_key

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'configs', 'tiny')
# The student's mask transform inside RepeatedAugment (configs/tiny/_tiny_base.py).
MASK_KEY = 'train_dataloader.dataset.pipeline.3.transforms.3'
STUDENT_CONFIGS = {'none': 'videomae_student_tiny_motion.py'}
DISTILLED_CONFIG = 'amd_tiny_motion.py'


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


def _unique_name(work_dir: str) -> str:
    # Runners in one process need their own logger / visualizer instances.
    tail = '_'.join(osp.normpath(work_dir).split(os.sep)[-3:])
    return f'{tail}_{time.strftime("%H%M%S")}_{time.monotonic_ns() % 10**6}'


def epoch_options(cfg, epochs: int, batch_size: int, seed: int, work_dir: str) -> dict:
    """cfg-options shared by every stage: epochs, schedule, batch, seed,
    no intermediate validation, one checkpoint at the end."""
    return {
        'work_dir': work_dir, 'experiment_name': _unique_name(work_dir),
        'train_cfg.max_epochs': epochs, 'train_cfg.val_interval': epochs + 1,
        'param_scheduler': schedule_for(cfg, epochs),
        'default_hooks.checkpoint.interval': epochs,
        'train_dataloader.batch_size': batch_size,
        'randomness.seed': seed,
    }


def pretrain_config(config: str, data: Dict[str, str], work_dir: str, epochs: int,
                    batch_size: int, seed: int, extra: Optional[dict] = None):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(TINY, config))
    opts = epoch_options(cfg, epochs, batch_size, seed, work_dir)
    opts.update({'train_dataloader.dataset.ann_file': data['train'],
                 'train_dataloader.dataset.data_prefix.video': data['root']})
    opts.update(extra or {})
    cfg.merge_from_dict(opts)
    mask = cfg.train_dataloader.dataset.pipeline[3].transforms[3]
    if mask.type != 'AsymmetricTubeMask':
        raise ValueError(f'{config}: expected AsymmetricTubeMask at {MASK_KEY}, found '
                         f'{mask.type}; the variant options would land elsewhere')
    return cfg


def variant_options(variant: dict, teacher_ckpt: Optional[str]) -> dict:
    """cfg-options turning the tiny AMD config into ``variant``."""
    if variant['manner'] == 'none':
        return {f'{MASK_KEY}.mode': 'tube'}
    return {'model.teacher.checkpoint': teacher_ckpt,
            'model.alignment.manner': variant['manner'],
            f'{MASK_KEY}.mode': variant['mask'],
            f'{MASK_KEY}.teacher_ratio': variant['teacher_ratio']}


def train(cfg) -> dict:
    """Train with the Runner; return the last checkpoint and the last
    logged losses (for the diagnosis when a variant loses)."""
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    runner.train()
    ckpt = osp.join(cfg.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    losses = {k[len('train/'):]: float(v.current())
              for k, v in runner.message_hub.log_scalars.items()
              if k.startswith('train/loss')}
    del runner
    gc.collect()
    if not osp.isfile(ckpt):
        raise RuntimeError(f'training in {cfg.work_dir} finished without {ckpt}')
    return dict(checkpoint=ckpt, losses=losses)


class ProtocolRun:
    """The protocol ``p`` run into ``out_dir``."""

    def __init__(self, p: dict, out_dir: str, resume: bool = True,
                 log: Callable[[str], None] = print, log_level: str = 'INFO',
                 threads: Optional[int] = 1):
        # threads: torch intra-op threads for every stage (None: leave as is).
        # The tiny models gain little from a second thread, and on a busy
        # machine spinning OpenMP threads slow each step several-fold.
        self.p, self.out, self.log, self.log_level = p, out_dir, log, log_level
        self.threads = threads
        os.makedirs(out_dir, exist_ok=True)
        self.records_file = osp.join(out_dir, 'records.jsonl')
        self._check_same_protocol(resume)
        self.records = self._load_records() if resume else {}

    # -- bookkeeping ---------------------------------------------------
    def _check_same_protocol(self, resume: bool):
        path = osp.join(self.out, 'protocol.json')
        if resume and osp.isfile(path):
            with open(path) as f:
                old = json.load(f)
            if old != json.loads(json.dumps(self.p)):
                diff = sorted(k for k in set(old) | set(self.p)
                              if old.get(k) != json.loads(json.dumps(self.p.get(k))))
                raise ValueError(
                    f'{path} holds another protocol (differs in {diff}); use another '
                    'output folder, or --no-resume to start this one over')
        elif not resume and osp.isfile(self.records_file):
            os.remove(self.records_file)
        with open(path, 'w') as f:
            json.dump(self.p, f, indent=1)

    def _load_records(self) -> Dict[str, dict]:
        out = {}
        if osp.isfile(self.records_file):
            with open(self.records_file) as f:
                for line in f:
                    if line.strip():
                        r = json.loads(line)
                        if r.get('invalid'):
                            out.pop(r['key'], None)
                        else:
                            out[r['key']] = r
        return out

    def _save(self, rec: dict):
        self.records[rec['key']] = rec
        with open(self.records_file, 'a') as f:
            f.write(json.dumps(rec) + '\n')

    def _invalidate_dependents(self, stage: dict):
        """A stage run anew makes what was built on its old output stale:
        data / teacher -> everything after it for that seed (every seed
        when the data is shared); a student -> its transfers."""
        if stage['kind'] not in ('data', 'teacher', 'pretrain'):
            return  # nothing is built on a transfer's output
        shared = stage['kind'] == 'data' and not self.p['data'].get('per_seed', True)
        for key in list(self.records):
            r = self.records[key]
            if key == stage_key(stage) or not (shared or r['seed'] == stage['seed']):
                continue
            if stage['kind'] == 'pretrain':
                stale = r['variant'] == stage['variant'] and r['kind'] != 'pretrain'
            else:
                stale = stage['kind'] == 'data' or r['kind'] not in ('data', 'teacher')
            if stale:
                self.records.pop(key)
                with open(self.records_file, 'a') as f:
                    f.write(json.dumps(dict(key=key, invalid=True)) + '\n')

    def stage_dir(self, stage: dict) -> str:
        return osp.join(self.out, stage_key(stage))

    def data_for(self, seed: int) -> Dict[str, str]:
        if not self.p['data'].get('per_seed', True):
            seed = self.p['seeds'][0]
        return self.records[f'seed{seed}/data']['data']

    # -- stages --------------------------------------------------------
    def run_data(self, stage):
        from amd_mmaction.data.synthetic import make_motion_dataset
        d = self.p['data']
        data = make_motion_dataset(
            self.stage_dir(stage), d['num_train'], d['num_val'], num_frames=d['num_frames'],
            size=d['size'], ext=d.get('ext', 'webm'), seed=d.get('seed', 0) + stage['seed'])
        return dict(data=data)

    def run_teacher(self, stage):
        t = self.p['teacher']
        cfg = pretrain_config(t['config'], self.data_for(stage['seed']), self.stage_dir(stage),
                              t['epochs'], t['batch_size'], stage['seed'],
                              {'log_level': self.log_level})
        return train(cfg)

    def run_pretrain(self, stage):
        v = self.p['variants'][stage['variant']]
        teacher = None
        if v['manner'] != 'none':
            teacher = self.records[f"seed{stage['seed']}/teacher"]['checkpoint']
        config = STUDENT_CONFIGS.get(v['manner'], DISTILLED_CONFIG)
        s = self.p['pretrain']
        cfg = pretrain_config(config, self.data_for(stage['seed']), self.stage_dir(stage),
                              s['epochs'], s['batch_size'], stage['seed'],
                              dict(variant_options(v, teacher), log_level=self.log_level))
        return train(cfg)

    def run_transfer(self, stage):
        from mmengine.config import Config
        from amd_mmaction.reproduce.stages import export_and_finetune
        kind = 'linear_probe' if stage['kind'] == 'teacher_probe' else stage['kind']
        t = self.p[kind]
        config = osp.join(TINY, t['config'])
        work = self.stage_dir(stage)
        opts = epoch_options(Config.fromfile(config), t['epochs'], t['batch_size'],
                             stage['seed'], work)
        opts.pop('work_dir')  # export_and_finetune's own argument
        opts['log_level'] = self.log_level
        if stage['kind'] == 'teacher_probe':
            # The teacher's own features, probed like the students': is it
            # a teacher worth distilling from?
            ckpt = self.records[f"seed{stage['seed']}/teacher"]['checkpoint']
            enc = Config.fromfile(osp.join(TINY, self.p['teacher']['config'])).model.student
            opts.update({'model.backbone.embed_dims': enc.embed_dims,
                         'model.backbone.depth': enc.depth,
                         'model.backbone.num_heads': enc.num_heads,
                         'model.cls_head.in_channels': enc.embed_dims})
        else:
            ckpt = self.records[f"seed{stage['seed']}/pretrain/{stage['variant']}"]['checkpoint']
        r = export_and_finetune(ckpt, self.data_for(stage['seed']), work, config=config,
                                threads=None, **opts)  # run() has set them
        gc.collect()
        return dict(top1=float(r['top1']), top5=_float(r.get('top5')),
                    mean1=_float(r.get('mean1')))

    # -- driver --------------------------------------------------------
    def run(self, stop_after: Optional[int] = None) -> List[dict]:
        """Run every stage not yet recorded; ``stop_after`` (for tests):
        stop after that many newly run stages. Returns all records."""
        todo = plan_stages(self.p)
        done_now = 0
        for i, stage in enumerate(todo):
            key = stage_key(stage)
            if key in self.records and self._outputs_exist(self.records[key]):
                continue
            if stop_after is not None and done_now >= stop_after:
                break
            self.log(f'[reproduce] {i + 1}/{len(todo)} {key} ...')
            start, cpu = time.time(), time.process_time()
            fn = {'data': self.run_data, 'teacher': self.run_teacher,
                  'pretrain': self.run_pretrain}.get(stage['kind'], self.run_transfer)
            previous = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                rec = dict(stage, key=key, **fn(stage))
            finally:
                torch.set_num_threads(previous)
            rec['seconds'] = time.time() - start
            # CPU seconds of this process: on a shared machine, the closer
            # estimate of what the stage costs alone (1 thread).
            rec['cpu_seconds'] = time.process_time() - cpu
            self._invalidate_dependents(stage)
            self._save(rec)
            done_now += 1
            extra = f" top-1 {100 * rec['top1']:.1f}%" if 'top1' in rec else ''
            self.log(f'[reproduce] {key} done in {rec["seconds"]:.0f}s{extra}')
        return [self.records[stage_key(s)] for s in todo if stage_key(s) in self.records]

    @staticmethod
    def _outputs_exist(rec: dict) -> bool:
        # A record whose checkpoint / data was deleted is run again.
        if 'checkpoint' in rec:
            return osp.isfile(rec['checkpoint'])
        if 'data' in rec:
            return osp.isfile(rec['data']['train'])
        return True


def _float(x):
    return None if x is None else float(x)
