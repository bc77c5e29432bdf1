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

from amd_mmaction.reproduce.protocol import (RANDOM, TRAINED, UNTRAINED, checkpoint_interval,
                                             plan_stages, shared_stages, stage_key, stage_name,
                                             teacher_stages, unit_stages, units)
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


def write_order(root: str, d: dict) -> Dict[str, str]:
    """The order data set (:mod:`amd_mmaction.data.synthetic_order`):
    train / val and the teacher's pool list (train + its own pool clips)."""
    from amd_mmaction.data.synthetic_order import make_order_dataset
    data = make_order_dataset(root, d['num_train'], d['num_pool'], d['num_val'],
                              num_frames=d['num_frames'], size=d['size'],
                              ext=d.get('ext', 'webm'), seed=d['seed'])
    lines = []
    for split in ('train', 'pool'):
        with open(data[split]) as f:
            lines += [x.strip() for x in f if x.strip()]
    data['pool'] = osp.join(root, 'teacher_pool.txt')
    with open(data['pool'], 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return dict(root=data['root'], train=data['train'], val=data['val'], pool=data['pool'],
                num_classes=data['num_classes'])


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


def teacher_shape(config: str) -> dict:
    """cfg-options giving a distilled student's frozen teacher the encoder
    of teacher pre-training ``config``, aligned at its middle and last
    blocks (the tiny teacher's taps (3, 6) of 6 blocks)."""
    from mmengine.config import Config
    st = Config.fromfile(resolve_config(config)).model.student
    return {'model.teacher.encoder.embed_dims': st.embed_dims,
            'model.teacher.encoder.depth': st.depth,
            'model.teacher.encoder.num_heads': st.num_heads,
            'model.teacher.taps': (st.depth // 2, st.depth),
            'model.alignment.teacher_taps': (st.depth // 2, st.depth)}


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
        write = dict(synthetic=write_synthetic, order=write_order, lists=check_lists)
        data = write[d['source']](root, d)
        return dict(data=data, outputs=[data['train'], data['val'], data['pool']])

    def teacher_section(self, name: Optional[str] = None) -> dict:
        """The main teacher's section, or extra teacher ``name``'s."""
        return self.p['teacher'] if name is None else self.p['teachers'][name]

    def _teacher_cfg(self, work_dir, name: Optional[str] = None):
        t = self.teacher_section(name)
        cfg = pretrain_config(t['config'], dict(train=self.data['pool'], root=self.data['root']),
                              work_dir, t['epochs'], t['batch_size'], t.get('seed', 0),
                              {'log_level': self.log_level, f'{MASK_KEY}.mode': 'tube',
                               f'{MASK_KEY}.student_ratio': t['mask_ratio'],
                               'default_hooks.checkpoint.interval':
                                   t.get('checkpoint_interval', checkpoint_interval(t)),
                               'default_hooks.checkpoint.max_keep_ckpts':
                                   -1 if t.get('stages') else t.get('keep_checkpoints', 1),
                               'model.head.target_norm': self.p['target_norm']})
        return cfg

    def run_teacher(self, stage):
        """Plain VideoMAE pre-training of the main teacher (or of extra
        teacher ``stage['name']``) on the pool; with ``stages`` every stage's
        checkpoint is kept."""
        work = self.stage_dir(stage)
        cfg = self._teacher_cfg(work, stage.get('name'))
        os.makedirs(work, exist_ok=True)
        cfg.dump(osp.join(work, 'teacher_config.py'))
        res = train_runner(cfg, resume=True)
        rows = scalar_log(work)
        del res['runner']
        gc.collect()
        out = dict(checkpoint=res['checkpoint'], losses=res['losses'],
                   config=osp.join(work, 'teacher_config.py'),
                   curve=epoch_curve(rows, 'loss_recon'), outputs=[res['checkpoint']])
        if self.teacher_section(stage.get('name')).get('stages'):
            from amd_mmaction.reproduce.teacher_stages import select_teacher_stages
            kept = select_teacher_stages(work, self.teacher_section(stage.get('name'))['stages'])
            out['stages'] = {s.name: s.checkpoint for s in kept}
            out['outputs'] += [s.checkpoint for s in kept if s.checkpoint]
        return out

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

    def _gate(self, config, checkpoint, name: Optional[str] = None) -> dict:
        """Every gate figure of one network (:func:`..gate.run_teacher_gate`);
        ``checkpoint`` None: the untrained network of ``config``'s shape."""
        from amd_mmaction.reproduce.gate import run_teacher_gate
        g = self.p['teacher']['gate']
        return run_teacher_gate(config, checkpoint, self.data,
                                mask_ratio=self.teacher_section(name)['mask_ratio'],
                                margin=g['recon_margin'], factor=g['probe_factor'],
                                num_classes=self.data['num_classes'],
                                knn=self.p['evaluation']['knn'])

    @staticmethod
    def vs_untrained(trained: dict, untrained: dict) -> dict:
        """The margin of a trained network over the untrained one (probe and
        k-NN, paired bootstrap over the validation clips)."""
        from amd_mmaction.reproduce.stats import untrained_margin
        return {m: untrained_margin(trained[f'{m}_correct'], untrained[f'{m}_correct'])
                for m in ('probe', 'knn')}

    def _judge(self, g: dict, untrained: Optional[dict]) -> dict:
        """The gate's verdict on ``g``: v2's criteria (reconstruction, probe
        over chance) and, when the protocol asks (``gate.vs_untrained``), a
        probe and a k-NN margin over the untrained network whose intervals
        lie above zero."""
        if untrained is not None and 'probe_correct' in g:
            g['vs_untrained'] = self.vs_untrained(g, untrained)
            if self.p['teacher']['gate'].get('vs_untrained'):
                for m, res in g['vs_untrained'].items():
                    if not res['passed']:
                        g['passed'] = False
                        g['reasons'].append(
                            f"{m} {res['trained_top1']:.1f}% does not beat the untrained "
                            f"network's {res['untrained_top1']:.1f}% (margin "
                            f"{res['margin']:+.1f} [{res['interval'][0]:+.1f}, "
                            f"{res['interval'][1]:+.1f}])")
        return g

    def run_gate(self, stage):
        """The gate of the main teacher (beside the random teacher, its
        untrained stage), or of extra teacher ``stage['name']`` (beside an
        untrained network of its own shape)."""
        name = stage.get('name')
        if name is None:
            out = {n: self._gate(self.records[n]['config'], self.records[n]['checkpoint'])
                   for n in ('teacher', 'teacher_random')}
            self._judge(out['teacher'], out['teacher_random'])
            return dict(gate=out, passed=out['teacher']['passed'])
        rec = self.records[stage_key(dict(kind='teacher', name=name))]
        out = dict(untrained=self._gate(rec['config'], None, name))
        out['teacher'] = self._judge(self._gate(rec['config'], rec['checkpoint'], name),
                                     out['untrained'])
        return dict(gate=out, passed=out['teacher']['passed'])

    def run_stage_gate(self, stage):
        """A dose-response stage of the main teacher: its checkpoint's gate
        figures and margin over the untrained stage."""
        teacher = self.records['teacher']
        g = self._gate(teacher['config'], teacher['stages'][stage['name']])
        self._judge(g, self.records['gate']['gate']['teacher_random'])
        return dict(gate=g, passed=g['passed'], epoch=int(stage['name'][len('epoch_'):]))

    def stage_gates(self) -> Dict[str, dict]:
        """{stage name: gate figures} of every dose-response stage recorded
        (untrained and the end from the main gate)."""
        out = {}
        gate = self.records.get('gate', {}).get('gate')
        for e in teacher_stages(self.p):
            if e == 0 and gate:
                out[UNTRAINED] = gate['teacher_random']
            elif e == self.p['teacher']['epochs'] and gate:
                out[stage_name(e)] = gate['teacher']
            else:
                r = self.records.get(stage_key(dict(kind='stage_gate', name=stage_name(e))))
                if r:
                    out[stage_name(e)] = r['gate']
        return out

    def teacher_curve(self, every: int = 1) -> List[dict]:
        """A pilot curve (sizing a teacher): the gate figures of every
        ``every``-th saved checkpoint of the main teacher, each with its
        margin over the untrained network; kept in ``teacher_curve.jsonl``
        (one line per epoch, so a rerun only scores what is new)."""
        import json
        from amd_mmaction.reproduce.teacher_stages import saved_epochs
        if self.valid('gate') is None:
            raise RuntimeError(f'{self.out}: no current teacher gate; run the protocol '
                               '(--teacher-only) first')
        path = osp.join(self.out, 'teacher_curve.jsonl')
        done = {}
        if osp.isfile(path):
            with open(path) as f:
                for line in f:
                    if line.strip():
                        r = json.loads(line)
                        if r.get('teacher_id') == self.records['teacher']['id']:
                            done[r['epoch']] = r
        teacher = self.records['teacher']
        untrained = self.records['gate']['gate']['teacher_random']
        for epoch, ckpt in saved_epochs(self.stage_dir(dict(kind='teacher'))).items():
            if epoch % every or epoch in done:
                continue
            self.log(f'{LOG} teacher curve: epoch {epoch} ...')
            g = self._judge(self._gate(teacher['config'], ckpt), untrained)
            r = dict(epoch=epoch, teacher_id=teacher['id'], gate=g)
            with open(path, 'a') as f:
                f.write(json.dumps(r) + '\n')
            done[epoch] = r
            self._log_gate(f'epoch {epoch}', g)
        return [done[e] for e in sorted(done)]

    # -- students ------------------------------------------------------
    def teacher_key(self, variant: dict) -> str:
        """The record whose checkpoint ``variant`` distils from."""
        ref = variant.get('teacher', TRAINED)
        if ref == RANDOM:
            return 'teacher_random'
        if ref == TRAINED or ref.startswith('epoch_'):
            return 'teacher'
        return stage_key(dict(kind='teacher', name=ref))

    def _teacher_for(self, variant: dict) -> Optional[str]:
        if variant['manner'] == 'none':
            return None
        rec = self.records[self.teacher_key(variant)]
        ref = variant.get('teacher', TRAINED)
        return rec['stages'][ref] if ref.startswith('epoch_') else rec['checkpoint']

    def unit_parent(self, variant: str) -> str:
        """The shared stage a student is built on: the gate that judged
        its teacher (a stage gate, an extra teacher's gate) or the main one."""
        v = self.p['variants'][variant]
        ref = v.get('teacher', TRAINED)
        if v['manner'] == 'none' or ref in (TRAINED, RANDOM):
            return 'gate'
        if ref.startswith('epoch_'):
            return stage_key(dict(kind='stage_gate', name=ref))
        return stage_key(dict(kind='gate', name=ref))

    def run_pretrain(self, stage):
        v = self.p['variants'][stage['variant']]
        s = self.p['pretrain']
        work = self.stage_dir(stage)
        config = STUDENT_CONFIGS.get(v['manner'], DISTILLED_CONFIG)
        extra = dict(variant_options(v, self._teacher_for(v)), log_level=self.log_level)
        if v['manner'] != 'none' and self.teacher_key(v).startswith('teacher@'):
            extra.update(teacher_shape(self.teacher_section(v['teacher'])['config']))
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

    @staticmethod
    def shared_parent(stage: dict) -> Optional[str]:
        kind, name = stage['kind'], stage.get('name')
        if kind == 'data':
            return None
        if kind == 'teacher':
            return 'data'
        if kind == 'teacher_random':
            return 'teacher'
        if kind == 'gate':
            return stage_key(dict(kind='teacher', name=name)) if name else 'teacher_random'
        return 'gate'  # stage_gate

    def _log_gate(self, label: str, g: dict):
        line = (f"{LOG} gate {label}: recon {g['recon']:.5f} vs trivial {g['trivial']:.5f} "
                f"(ratio {g['recon_ratio']:.3f}, needs <= {g['margin']}), linear probe "
                f"{g['probe_top1']:.1f}% (needs >= {g['factor'] * g['chance']:.1f}%), "
                f"k-NN {g['knn_top1']:.1f}%")
        for m, res in g.get('vs_untrained', {}).items():
            line += (f", {m} vs untrained {res['margin']:+.1f} "
                     f"[{res['interval'][0]:+.1f}, {res['interval'][1]:+.1f}]")
        self.log(f"{line}: {'PASSED' if g['passed'] else 'failed'}")

    def run_shared(self, force: bool = False):
        """The stages before any student (:func:`..protocol.shared_stages`).
        The main teacher's gate decides whether students are trained (unless
        ``force``, or the protocol's ``gate.required`` is False: then the
        report says which teachers count as trained)."""
        for stage in shared_stages(self.p):
            key = stage_key(stage)
            if self.valid(key) is None:
                threads = (self.teacher_section(stage.get('name')).get('threads', 1)
                           if stage['kind'] == 'teacher' else 1)
                self._run_stage(stage, self.shared_parent(stage), threads)
            for name, g in self._gates_of(stage):
                self._log_gate(name, g)
        gate = self.records['gate']['gate']
        if not self.p['teacher']['gate'].get('required', True):
            force = True
        if not gate['teacher']['passed'] and not force:
            raise GateFailed('the teacher did not pass its gate: ' +
                             '; '.join(gate['teacher']['reasons']) +
                             '. No student is trained (--force trains them anyway).')

    def _gates_of(self, stage: dict):
        """(name to log, gate figures) of a shared stage's record: a teacher
        stage's gate; a larger teacher's gate; the main gate (teacher and
        its untrained twin); nothing for stages that are not gates."""
        key = stage_key(stage)
        if stage['kind'] == 'stage_gate':
            return [(key, self.records[key]['gate'])]
        if stage['kind'] != 'gate':
            return []
        gate = self.records[key]['gate']
        if stage.get('name'):
            return [(key, gate['teacher'])]
        return [(name, gate[name]) for name in ('teacher', 'teacher_random')]

    def run_units(self, index: int = 0, count: int = 1):
        for i, unit in enumerate(units(self.p)):
            if i % count != index:
                continue
            parent = self.unit_parent(unit['variant'])
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
            pass  # the shared stages only
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

