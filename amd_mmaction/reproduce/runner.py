"""Runs the reproduction protocol (:mod:`.protocol`) stage by stage through
mmengine's Runner: data -> teacher -> random teacher -> gate -> per student
(variant, seed): pre-training -> frozen-feature k-NN + linear probe ->
fine-tuning.

Resumable: every finished stage is recorded (:mod:`.records`); a rerun
skips what is recorded, built on the current records and whose outputs
still exist, and redoes what was built on a stage that ran again.

Students are independent once the teacher passed its gate, so ``workers``
processes (one torch thread each) share them out; on the 2-core machine
two workers make the students' wall time about half.
"""
import gc
import os
import os.path as osp
import subprocess
import time
import uuid
from typing import Callable, Dict, List, Optional

import torch

from amd_mmaction.reproduce.protocol import plan_stages, stage_key, unit_stages, units
from amd_mmaction.reproduce.records import RecordStore
from amd_mmaction.reproduce.stages import (DISTILLED_CONFIG, MASK_KEY, STUDENT_CONFIGS,
                                           epoch_options, epoch_curve, export_for,
                                           finetune_config, pretrain_config, resolve_config,
                                           scalar_log, train_runner, val_curve,
                                           variant_options)

LOG = '[reproduce]'  # the prefix of progress lines (workers' are echoed by it)


class GateFailed(RuntimeError):
    """The teacher did not pass its gate: no student is trained."""


# -- data ------------------------------------------------------------------
def write_synthetic(root: str, d: dict) -> Dict[str, str]:
    """train / val (labeled) and the teacher's pool list (train + num_pool
    more clips, drawn from another generator stream)."""
    from amd_mmaction.data.synthetic import make_motion_dataset
    data = make_motion_dataset(root, d['num_train'], d['num_val'], num_frames=d['num_frames'],
                               size=d['size'], ext=d.get('ext', 'webm'), seed=d['seed'])
    lines = open(data['train']).read().split('\n')
    if d['num_pool']:
        extra = make_motion_dataset(osp.join(root, 'pool'), d['num_pool'], 1,
                                    num_frames=d['num_frames'], size=d['size'],
                                    ext=d.get('ext', 'webm'), seed=d['seed'] + 1)
        for line in open(extra['train']).read().split('\n'):
            if line.strip():
                rel, label = line.split()
                lines.append(f'{osp.relpath(osp.join(extra["root"], rel), data["root"])} {label}')
    data['pool'] = osp.join(root, 'teacher_pool.txt')
    with open(data['pool'], 'w') as f:
        f.write('\n'.join(x for x in lines if x.strip()) + '\n')
    data['num_classes'] = 6
    return data


def check_lists(root: str, d: dict) -> Dict[str, str]:
    """Bring-your-own-data: validate the lists before any training (errors
    name file:line), refuse a validation clip that is also in the train
    list or the pool (same path or same content, both file:line named), and
    write the teacher's pool list (train + pool; pool lines may lack a
    label, pre-training ignores it)."""
    from amd_mmaction.data.lists import check_video_list
    from amd_mmaction.data.overlap import check_disjoint
    n = d['num_classes']
    entries = {s: check_video_list(d[s], d['root'], num_classes=n) for s in ('train', 'val')}
    pool = []
    if d.get('pool'):
        pool = check_video_list(d['pool'], d['root'], num_classes=None, require_label=False)
    check_disjoint(d['val'], [d['train']] + ([d['pool']] if d.get('pool') else []), d['root'])
    os.makedirs(root, exist_ok=True)
    out = dict(root=d['root'], train=d['train'], val=d['val'], num_classes=n,
               pool=osp.join(root, 'teacher_pool.txt'),
               sizes=dict(train=len(entries['train']), val=len(entries['val']),
                          pool=len(entries['train']) + len(pool)))
    with open(out['pool'], 'w') as f:
        for path, label in entries['train'] + [(p, 0) for p, _ in pool]:
            f.write(f'{osp.relpath(path, d["root"])} {max(int(label), 0)}\n')
    return out


class ProtocolRun:
    """Protocol ``p`` run into ``out_dir``. ``worker``: a worker process
    (writes its own records file); ``read_only``: only the records are read
    (a report, a run built on this one); ``base``: the record store of a
    run this one builds on."""

    CHILD_KINDS = ('features', 'finetune')  # stages given their parent's record

    def __init__(self, p: dict, out_dir: str, resume: bool = True,
                 log: Callable[[str], None] = print, log_level: str = 'WARNING',
                 worker: Optional[int] = None, read_only: bool = False,
                 base: Optional[RecordStore] = None):
        self.p, self.out, self.log, self.log_level = p, out_dir, log, log_level
        self.worker = worker
        if not read_only:
            os.makedirs(out_dir, exist_ok=True)
        self.store = RecordStore(out_dir, worker, read_only, base)
        if not read_only and worker is None:
            self.store.claim(p, resume)

    @property
    def records(self) -> Dict[str, dict]:
        return self.store.records

    def valid(self, key: str, outputs: bool = True) -> Optional[dict]:
        """The record of ``key`` if it is current (:meth:`RecordStore.valid`)."""
        return self.store.valid(key, outputs)

    def stage_dir(self, stage: dict) -> str:
        return osp.join(self.out, stage_key(stage))

    @property
    def data(self) -> dict:
        return self.records['data']['data']

    # -- shared stages -------------------------------------------------
    def run_data(self, stage):
        d = self.p['data']
        root = self.stage_dir(stage)
        data = write_synthetic(root, d) if d['source'] == 'synthetic' else check_lists(root, d)
        return dict(data=data, outputs=[data['train'], data['val'], data['pool']])

    def _teacher_cfg(self, work_dir):
        t = self.p['teacher']
        cfg = pretrain_config(t['config'], dict(train=self.data['pool'], root=self.data['root']),
                              work_dir, t['epochs'], t['batch_size'], t.get('seed', 0),
                              {'log_level': self.log_level, f'{MASK_KEY}.mode': 'tube',
                               f'{MASK_KEY}.student_ratio': t['mask_ratio'],
                               'default_hooks.checkpoint.interval': min(5, t['epochs']),
                               'model.head.target_norm': self.p['target_norm']})
        return cfg

    def run_teacher(self, stage):
        work = self.stage_dir(stage)
        cfg = self._teacher_cfg(work)
        os.makedirs(work, exist_ok=True)
        cfg.dump(osp.join(work, 'teacher_config.py'))
        res = train_runner(cfg, resume=True)
        rows = scalar_log(work)
        del res['runner']
        gc.collect()
        return dict(checkpoint=res['checkpoint'], losses=res['losses'],
                    config=osp.join(work, 'teacher_config.py'),
                    curve=epoch_curve(rows, 'loss_recon'), outputs=[res['checkpoint']])

    def run_teacher_random(self, stage):
        """An untrained teacher of the trained one's shape (the control),
        saved as a plain tensor checkpoint (student.* keys)."""
        from mmaction.registry import MODELS
        from mmengine.registry import init_default_scope
        init_default_scope('mmaction')
        work = self.stage_dir(stage)
        os.makedirs(work, exist_ok=True)
        cfg = self._teacher_cfg(work)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(10_000 + self.p['teacher'].get('seed', 0))
            model = MODELS.build(cfg.model)
            model.init_weights()
        path = osp.join(work, 'random_teacher.pth')
        tmp = path + '.tmp'
        torch.save({'state_dict': model.state_dict(),
                    'meta': {'note': 'untrained teacher (protocol v2 control)'}}, tmp)
        os.replace(tmp, path)
        return dict(checkpoint=path, config=self.records['teacher']['config'], outputs=[path])

    def run_gate(self, stage):
        from amd_mmaction.reproduce.gate import run_teacher_gate
        from amd_mmaction.reproduce.knn import knn_top1
        from amd_mmaction.reproduce.features import extract_features
        g = self.p['teacher']['gate']
        out = {}
        for name in ('teacher', 'teacher_random'):
            rec = self.records[name]
            res = run_teacher_gate(rec['config'], rec['checkpoint'], self.data,
                                   mask_ratio=self.p['teacher']['mask_ratio'],
                                   margin=g['recon_margin'], factor=g['probe_factor'],
                                   num_classes=self.data['num_classes'])
            feats = {s: extract_features(self.data[s], self.data['root'], rec['config'],
                                         rec['checkpoint']) for s in ('train', 'val')}
            res['knn_top1'] = knn_top1(*feats['train'], *feats['val'],
                                       **self.p['evaluation']['knn'])
            out[name] = res
        return dict(gate=out, passed=out['teacher']['passed'])

    # -- students ------------------------------------------------------
    def _teacher_for(self, variant: dict) -> Optional[str]:
        if variant['manner'] == 'none':
            return None
        key = 'teacher_random' if variant.get('teacher') == 'random' else 'teacher'
        return self.records[key]['checkpoint']

    def run_pretrain(self, stage):
        v = self.p['variants'][stage['variant']]
        s = self.p['pretrain']
        work = self.stage_dir(stage)
        config = STUDENT_CONFIGS.get(v['manner'], DISTILLED_CONFIG)
        extra = dict(variant_options(v, self._teacher_for(v)), log_level=self.log_level)
        extra['model.head.target_norm'] = self.p['target_norm']
        cfg = pretrain_config(config, self.data, work, s['epochs'], s['batch_size'],
                              stage['seed'], extra)
        os.makedirs(work, exist_ok=True)
        cfg.dump(osp.join(work, 'student_config.py'))
        res = train_runner(cfg)
        rows = scalar_log(work)
        del res['runner']
        gc.collect()
        curves = {k: epoch_curve(rows, k) for k in ('loss_recon', 'loss_dir', 'loss_gen')}
        return dict(checkpoint=res['checkpoint'], losses=res['losses'],
                    config=osp.join(work, 'student_config.py'),
                    curves={k: c for k, c in curves.items() if c}, outputs=[res['checkpoint']])

    def run_features(self, stage, pre):
        from amd_mmaction.reproduce.features import extract_features
        from amd_mmaction.reproduce.knn import knn_top1
        from amd_mmaction.reproduce.linear import linear_probe
        feats = {s: extract_features(self.data[s], self.data['root'], pre['config'],
                                     pre['checkpoint']) for s in ('train', 'val')}
        knn = knn_top1(*feats['train'], *feats['val'], **self.p['evaluation']['knn'])
        probe = linear_probe(*feats['train'], *feats['val'], num_classes=self.data['num_classes'],
                             **self.p['evaluation'].get('linear', {}))
        return dict(knn_top1=float(knn), linear_top1=float(probe['top1']),
                    linear_train_top1=float(probe['train_top1']))

    def run_finetune(self, stage, pre):
        from mmengine.config import Config
        ft = self.p['evaluation']['finetune']
        config = resolve_config(ft['config'])
        work = self.stage_dir(stage)
        os.makedirs(work, exist_ok=True)
        opts = epoch_options(Config.fromfile(config), ft['epochs'], ft['batch_size'],
                             stage['seed'], work)
        opts.pop('work_dir')
        opts['train_cfg.val_interval'] = ft['val_interval']
        opts['log_level'] = self.log_level
        n = self.data['num_classes']
        opts.update({'model.cls_head.num_classes': n,
                     'model.data_preprocessor.blending.augments.0.num_classes': n,
                     'model.data_preprocessor.blending.augments.1.num_classes': n})
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            opts[f'{loader}.dataset.num_classes'] = n
        cfg = finetune_config(self.data, work, config, **opts)
        export_for(cfg, pre['checkpoint'], work)
        res = train_runner(cfg)
        test = res['runner'].test()
        rows = scalar_log(work)
        del res['runner']
        gc.collect()
        # mmaction2's AccMetric gives fractions; the frozen-feature metrics are in %
        return dict(finetune_top1=100 * float(test['acc/top1']),
                    finetune_mean1=100 * float(test['acc/mean1']),
                    val_curve=[[e, 100 * a] for e, a in val_curve(rows)], loss_curve=epoch_curve(rows, 'loss'),
                    checkpoint=res['checkpoint'], outputs=[res['checkpoint']])

    # -- driver --------------------------------------------------------
    def _run_stage(self, stage, parent_key=None, threads=1):
        key = stage_key(stage)
        self.log(f'{LOG} {key} ...')
        start = time.time()
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            parent = self.records.get(parent_key) if parent_key else None
            fn = getattr(self, f"run_{stage['kind']}")
            body = fn(stage, parent) if stage['kind'] in self.CHILD_KINDS else fn(stage)
        finally:
            torch.set_num_threads(previous)
        rec = dict(stage, key=key, id=uuid.uuid4().hex, started=start, finished=time.time(),
                   seconds=time.time() - start, parent_key=parent_key,
                   parent_id=parent['id'] if parent else None, **body)
        self.store.save(rec)
        shown = {k: round(v, 1) for k, v in rec.items()
                 if k.endswith('top1') and isinstance(v, float)}
        self.log(f'{LOG} {key} done in {rec["seconds"]:.0f}s {shown or ""}')
        return rec

    def run_shared(self, force: bool = False):
        chain = (('data', None), ('teacher', 'data'), ('teacher_random', 'teacher'),
                 ('gate', 'teacher_random'))
        for kind, parent in chain:
            if self.valid(kind) is None:
                threads = self.p['teacher'].get('threads', 1) if kind == 'teacher' else 1
                self._run_stage(dict(kind=kind, variant=None, seed=None), parent, threads)
        gate = self.records['gate']['gate']
        for name in ('teacher', 'teacher_random'):
            g = gate[name]
            self.log(f"{LOG} gate {name}: recon {g['recon']:.5f} vs trivial {g['trivial']:.5f} "
                     f"(ratio {g['recon_ratio']:.3f}, needs <= {g['margin']}), linear probe "
                     f"{g['probe_top1']:.1f}% (needs >= {g['factor'] * g['chance']:.1f}%), "
                     f"k-NN {g['knn_top1']:.1f}%: {'PASSED' if g['passed'] else 'failed'}")
        if not gate['teacher']['passed'] and not force:
            raise GateFailed('the teacher did not pass its gate: ' +
                             '; '.join(gate['teacher']['reasons']) +
                             '. No student is trained (--force trains them anyway).')

    def run_units(self, index: int = 0, count: int = 1):
        for i, unit in enumerate(units(self.p)):
            if i % count != index:
                continue
            parent = 'gate'
            for stage in unit_stages(self.p, unit):
                key = stage_key(stage)
                if self.valid(key) is None:
                    self._run_stage(stage, parent)
                parent = key if stage['kind'] == 'pretrain' else parent

    def all_done(self, outputs: bool = True) -> bool:
        return all(self.valid(stage_key(s), outputs) is not None for s in plan_stages(self.p))

    def run(self, force: bool = False, workers: Optional[int] = None,
            worker_cmd: Optional[List[str]] = None, stop_after_gate: bool = False):
        """Shared stages here; students in ``workers`` subprocesses
        (``worker_cmd`` + ``[index, count]``), or here when 1."""
        session = time.time()
        self.run_shared(force)
        workers = workers or self.p['workers']
        if stop_after_gate:
            pass
        elif workers <= 1 or worker_cmd is None:
            self.run_units()
        else:
            procs = []
            for i in range(workers):
                log = open(osp.join(self.out, f'worker{i}.log'), 'a')
                procs.append((subprocess.Popen(worker_cmd + [str(i), str(workers)], stdout=log,
                                               stderr=subprocess.STDOUT), log))
            shown = {}
            while any(p.poll() is None for p, _ in procs):
                time.sleep(5)
                shown = self._echo_workers(workers, shown)
            self._echo_workers(workers, shown)
            bad = [i for i, (p, _) in enumerate(procs) if p.returncode != 0]
            for _, log in procs:
                log.close()
            if bad:
                raise RuntimeError(f'worker(s) {bad} failed: see '
                                   + ', '.join(osp.join(self.out, f'worker{i}.log') for i in bad))
        self.store.reload()
        self.store.add_session(session, time.time() - session, self.all_done())
        return self.records

    def _echo_workers(self, workers, shown):
        for i in range(workers):
            path = osp.join(self.out, f'worker{i}.log')
            if not osp.isfile(path):
                continue
            with open(path) as f:
                lines = [x.rstrip() for x in f if x.startswith(LOG)]
            for line in lines[shown.get(i, 0):]:
                self.log(f'  w{i} {line}')
            shown[i] = len(lines)
        return shown

