"""The micro-scale reproduction protocol (tools/reproduce_paper.py): protocol
loading and checks, stage plan, resume bookkeeping, the statistics / table /
CSV / plot on known records, and a tiny end-to-end run through the real
Runner (real videos, real checkpoints)."""
import copy
import csv
import json
import os.path as osp

import pytest
import torch

from conftest import CONFIGS
from amd_mmaction.reproduce.v1_protocol import load_protocol, plan_stages, stage_key
from amd_mmaction.reproduce.v1_run import (MASK_KEY, ProtocolRun, pretrain_config,
                                              schedule_for, variant_options)
from amd_mmaction.reproduce.v1_report import (markdown, stats, summarize,
                                                     write_report)

PROTOCOL = osp.join(CONFIGS, 'reproduce', 'motion_protocol.py')
PAPER_VARIANTS = {'videomae', 'amd_serial', 'amd_parallel', 'amd_direct',
                  'amd_generation', 'dmae', 'amd_serial_tr50'}


def test_protocol_full_and_quick():
    full = load_protocol(PROTOCOL)
    assert set(full['variants']) == PAPER_VARIANTS and len(full['seeds']) >= 3
    quick = load_protocol(PROTOCOL, quick=True)
    assert list(quick['variants']) == ['videomae', 'amd_serial']
    assert quick['pretrain']['epochs'] < full['pretrain']['epochs']
    assert quick['data']['num_frames'] == full['data']['num_frames']  # merged, not replaced
    # every student gets the same pre-training epochs: one number for all
    assert 'epochs' not in json.dumps(full['variants'])
    tiny = load_protocol(PROTOCOL, quick=True, overrides={'seeds': [3], 'pretrain': {'epochs': 1}})
    assert tiny['seeds'] == [3] and tiny['pretrain'] == dict(full['pretrain'], epochs=1)


@pytest.mark.parametrize('overrides,message', [
    ({'pretrain': {'epochs': 0}}, 'pretrain.epochs'),
    ({'seeds': [1, 1]}, 'seeds'),
    ({'data': {'num_val': 0}}, 'data.num_val'),
    ({'variants': ['videomae', 'nope']}, "unknown variant(s) ['nope']"),
    ({'variants': 'videomae'}, "variants selects students by name: a list"),
])
def test_protocol_errors_name_the_key(overrides, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')
                       .replace('[', r'\[').replace(']', r'\]')):
        load_protocol(PROTOCOL, overrides=overrides)


def test_protocol_variant_errors(tmp_path):
    bad = tmp_path / 'bad.py'
    text = open(PROTOCOL).read() + "\nvariants['amd_serial']['manner'] = 'sideways'\n"
    bad.write_text(text)
    with pytest.raises(ValueError, match=r"variants.amd_serial.manner='sideways'"):
        load_protocol(str(bad))
    bad.write_text(open(PROTOCOL).read() + "\nvariants['videomae']['mask'] = 'asymmetric'\n")
    with pytest.raises(ValueError, match="variants.videomae: manner 'none' with mask"):
        load_protocol(str(bad))


def test_plan_stages_order():
    p = load_protocol(PROTOCOL)
    stages = plan_stages(p)
    n_var, n_seed = len(p['variants']), len(p['seeds'])
    assert p['teacher']['probe'] is True
    assert len(stages) == n_seed * (3 + 3 * n_var)
    keys = [stage_key(s) for s in stages]
    assert keys[:4] == ['seed0/data', 'seed0/teacher', 'seed0/teacher_probe',
                        'seed0/pretrain/videomae']
    # a student's transfer comes after its pre-training, the teacher before every student
    for s in stages:
        if s['kind'] in ('finetune', 'linear_probe'):
            assert keys.index(f"seed{s['seed']}/pretrain/{s['variant']}") < keys.index(stage_key(s))
        if s['kind'] == 'pretrain':
            assert keys.index(f"seed{s['seed']}/teacher") < keys.index(stage_key(s))
    shared = load_protocol(PROTOCOL, overrides={'data': {'per_seed': False}})
    assert sum(s['kind'] == 'data' for s in plan_stages(shared)) == 1
    no_probe = load_protocol(PROTOCOL, overrides={'teacher': {'probe': False}})
    assert len(plan_stages(no_probe)) == n_seed * (2 + 3 * n_var)
    only_mae = load_protocol(PROTOCOL, overrides={'variants': ['videomae']})
    assert not any(s['kind'] == 'teacher' for s in plan_stages(only_mae))


def test_schedule_refit():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', 'amd_tiny_motion.py'))
    warm, cos = schedule_for(cfg, 5)
    assert (warm['begin'], warm['end']) == (0, 1)
    assert (cos['begin'], cos['end'], cos['T_max']) == (1, 5, 4)
    assert [s['type'] for s in schedule_for(cfg, 1)] == ['LinearLR']


def test_every_variant_sets_its_mask_and_manner(tmp_path):
    """The cfg-options of each paper variant land on the model and the mask
    transform (built with mmaction's registry)."""
    from mmaction.registry import TRANSFORMS
    from amd_mmaction.reproduce.v1_run import DISTILLED_CONFIG, STUDENT_CONFIGS
    p = load_protocol(PROTOCOL)
    data = dict(train='train.txt', root='videos')
    seen = {}
    for name, v in p['variants'].items():
        config = STUDENT_CONFIGS.get(v['manner'], DISTILLED_CONFIG)
        cfg = pretrain_config(config, data, str(tmp_path / name), 3, 4, 7,
                              variant_options(v, 'teacher.pth'))
        mask = TRANSFORMS.build(cfg.train_dataloader.dataset.pipeline[3].transforms[3])
        manner = cfg.model.alignment.manner if cfg.model.get('alignment') else 'none'
        seen[name] = (manner, mask.mode, mask.teacher_ratio, mask.student_ratio)
        assert cfg.train_cfg.max_epochs == 3 and cfg.randomness.seed == 7
        assert cfg.train_dataloader.batch_size == 4
        if v['manner'] != 'none':
            assert cfg.model.teacher.checkpoint == 'teacher.pth'
        else:
            assert cfg.model.get('teacher') is None
    assert seen == {
        'videomae': ('none', 'tube', None, 0.9),
        'amd_serial': ('serial', 'asymmetric', 0.75, 0.9),
        'amd_parallel': ('parallel', 'asymmetric', 0.75, 0.9),
        'amd_direct': ('direct', 'asymmetric', 0.75, 0.9),
        'amd_generation': ('generation', 'asymmetric', 0.75, 0.9),
        'dmae': ('direct', 'symmetric', 0.9, 0.9),
        'amd_serial_tr50': ('serial', 'asymmetric', 0.5, 0.9),
    }
    assert MASK_KEY.endswith('pipeline.3.transforms.3')


# -- statistics and report on known records --------------------------------
def _records(top1):
    """top1: {variant: {kind: [per-seed fractions]}} -> stage records."""
    recs = []
    for variant, kinds in top1.items():
        for kind, values in kinds.items():
            for seed, v in enumerate(values):
                recs.append(dict(kind=kind, seed=seed, variant=variant, top1=v,
                                 seconds=10.0 + seed, key=f'seed{seed}/{kind}/{variant}'))
    for seed in range(3):
        recs.append(dict(kind='teacher', seed=seed, variant=None, seconds=100.0,
                         key=f'seed{seed}/teacher', losses=dict(loss_recon=0.5 + seed)))
        recs.append(dict(kind='teacher_probe', seed=seed, variant=None, seconds=5.0,
                         top1=0.8, key=f'seed{seed}/teacher_probe'))
        recs.append(dict(kind='pretrain', seed=seed, variant='amd_serial', seconds=20.0,
                         key=f'seed{seed}/pretrain/amd_serial',
                         losses=dict(loss_recon=0.7, loss_dir=0.1 * seed)))
    return recs


KNOWN = {'videomae': {'finetune': [0.50, 0.60, 0.70], 'linear_probe': [0.30, 0.30, 0.30]},
         'amd_serial': {'finetune': [0.60, 0.65, 0.85], 'linear_probe': [0.40, 0.20, 0.30]},
         'amd_parallel': {'finetune': [0.55, 0.60, 0.80], 'linear_probe': [0.40, 0.40, 0.40]}}


def _protocol(names):
    p = load_protocol(PROTOCOL)
    p['variants'] = {n: p['variants'][n] for n in names}
    p['seeds'] = [0, 1, 2]
    return p


def test_stats():
    s = stats([1.0, 2.0, 3.0])
    assert s['mean'] == 2.0 and s['std'] == pytest.approx(1.0) and s['n'] == 3
    assert stats([4.0])['std'] is None and stats([])['mean'] is None


def test_summary_table_csv_plot(tmp_path):
    p = _protocol(KNOWN)
    records = _records(KNOWN)
    s = summarize(records, p)
    ft = s['variants']['amd_serial']['finetune']
    assert ft['mean'] == pytest.approx(70.0) and ft['std'] == pytest.approx(13.2288, abs=1e-3)
    assert s['variants']['videomae']['linear_probe']['std'] == pytest.approx(0.0)
    # the margin is paired by seed: (10, 5, 15) points
    m = s['margins']['amd_serial']['finetune']
    assert m['values'] == pytest.approx([10.0, 5.0, 15.0]) and m['std'] == pytest.approx(5.0)
    assert s['margins']['amd_serial']['linear_probe']['mean'] == pytest.approx(0.0)
    claims = {(c['left'], c['right'], c['metric']): c['holds'] for c in s['claims']}
    assert claims[('amd_serial', 'videomae', 'finetune')] is True
    assert claims[('amd_serial', 'videomae', 'linear_probe')] is False  # equal is not '>'
    assert claims[('amd_serial', 'amd_parallel', 'finetune')] is True
    assert claims[('amd_serial', 'amd_parallel', 'linear_probe')] is False
    seeds_ok = {(c['left'], c['right'], c['metric']): c['seeds_holding'] for c in s['claims']}
    assert seeds_ok[('amd_serial', 'amd_parallel', 'linear_probe')] == 1  # (0, -20, -10)
    assert seeds_ok[('amd_serial', 'videomae', 'linear_probe')] == 1  # (10, -10, 0): 0 is not >
    assert s['stage_seconds']['teacher'] == pytest.approx(300.0)
    assert s['variants']['amd_serial']['seconds']['finetune'] == pytest.approx(11.0)
    assert s['variants']['amd_serial']['seconds']['pretrain'] == pytest.approx(20.0)
    assert s['teacher_probe']['mean'] == pytest.approx(80.0)
    assert s['final_losses']['teacher'] == {'loss_recon': pytest.approx(1.5)}
    assert s['final_losses']['amd_serial']['loss_dir'] == pytest.approx(0.1)

    table = markdown(s)
    for name, v in p['variants'].items():
        assert f"| {v['label']} (`{name}`) | " in table
    assert '| 70.0 ± 13.2 |' in table and '10.0 ± 5.0' in table
    assert 'serial D+G >= parallel D+G' in table and '**no**' in table
    assert 'linear-probe top-1: 80.0 ± 0.0 %' in table
    assert '| AMD serial D+G | 0.1000 | 0.7000 |' in table  # loss_dir, loss_recon

    paths = write_report(records, p, str(tmp_path), extra=dict(command='cmd --x', machine='m'))
    with open(paths['results_csv']) as f:
        rows = {r['variant']: r for r in csv.DictReader(f)}
    assert set(rows) == set(KNOWN)
    assert float(rows['amd_parallel']['finetune_top1_mean']) == pytest.approx(65.0)
    assert rows['videomae']['finetune_margin_vs_videomae_mean'] == ''
    with open(paths['json']) as f:
        saved = json.load(f)
    assert saved['command'] == 'cmd --x' and len(saved['records']) == len(records)
    assert 'Command: `cmd --x`' in open(paths['markdown']).read()
    import matplotlib.image as mpimg
    img = mpimg.imread(paths['png'])
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


def test_partial_records_report(tmp_path):
    """A run stopped early still gives a report (missing values as n/a)."""
    p = _protocol(KNOWN)
    recs = [r for r in _records(KNOWN) if r['variant'] != 'amd_parallel']
    paths = write_report(recs, p, str(tmp_path))
    assert 'n/a' in open(paths['markdown']).read()


# -- resume bookkeeping without training -----------------------------------
def _fake_run(tmp_path, p):
    run = ProtocolRun(p, str(tmp_path / 'out'), log=lambda m: None)
    for st in plan_stages(p):
        rec = dict(st, key=stage_key(st), seconds=1.0)
        if st['kind'] in ('teacher', 'pretrain'):
            ckpt = tmp_path / (stage_key(st).replace('/', '_') + '.pth')
            ckpt.write_bytes(b'x')
            rec['checkpoint'] = str(ckpt)
        elif st['kind'] == 'data':
            ann = tmp_path / f"train{st['seed']}.txt"
            ann.write_text('a 0\n')
            rec['data'] = dict(train=str(ann), val=str(ann), root=str(tmp_path))
        else:
            rec['top1'] = 0.5
        run._save(rec)
    return run


def test_resume_skips_done_and_invalidates_dependents(tmp_path):
    p = load_protocol(PROTOCOL, overrides={'seeds': [0, 1], 'variants': ['videomae', 'amd_serial']})
    run = _fake_run(tmp_path, p)
    again = ProtocolRun(p, run.out, log=lambda m: None)
    assert len(again.run()) == len(plan_stages(p))  # all recorded: nothing runs
    # a re-run teacher makes seed 0's students and transfers stale, not seed 1's
    again._invalidate_dependents(dict(kind='teacher', seed=0, variant=None))
    left = set(ProtocolRun(p, run.out, log=lambda m: None).records)
    assert {'seed0/data', 'seed0/teacher'} <= left
    assert not any(k.startswith('seed0/') and ('pretrain' in k or 'finetune' in k) for k in left)
    assert 'seed1/finetune/amd_serial' in left
    # a re-run student makes only its own transfers stale
    again._invalidate_dependents(dict(kind='pretrain', seed=1, variant='amd_serial'))
    left = set(ProtocolRun(p, run.out, log=lambda m: None).records)
    assert 'seed1/finetune/amd_serial' not in left and 'seed1/finetune/videomae' in left
    assert 'seed1/pretrain/amd_serial' in left


def test_resume_refuses_another_protocol(tmp_path):
    p = load_protocol(PROTOCOL, quick=True)
    ProtocolRun(p, str(tmp_path), log=lambda m: None)
    other = copy.deepcopy(p)
    other['pretrain']['epochs'] += 1
    with pytest.raises(ValueError, match=r"another protocol \(differs in \['pretrain'\]\)"):
        ProtocolRun(other, str(tmp_path), log=lambda m: None)
    ProtocolRun(other, str(tmp_path), resume=False, log=lambda m: None)  # start over: allowed


# -- the whole protocol, tiny ------------------------------------------------
def test_tiny_protocol_end_to_end(tmp_path):
    """2 variants x 1 seed x 1 epoch per stage on 8 + 6 real VP9 clips: data,
    teacher, both students, fine-tune + linear probe + multi-view test each,
    report; a second call runs nothing."""
    p = load_protocol(PROTOCOL, quick=True, overrides=dict(
        seeds=[0], data=dict(num_train=8, num_val=6),
        teacher=dict(epochs=1), pretrain=dict(epochs=1),
        finetune=dict(epochs=1), linear_probe=dict(epochs=1)))
    out = str(tmp_path / 'out')
    lines = []
    before = torch.get_num_threads()
    records = ProtocolRun(p, out, log=lines.append, log_level='WARNING').run()
    assert torch.get_num_threads() == before  # 1 thread per stage, restored after
    assert [r['key'] for r in records] == [stage_key(s) for s in plan_stages(p)]
    by_key = {r['key']: r for r in records}
    for kind in ('finetune', 'linear_probe'):
        for v in ('videomae', 'amd_serial'):
            assert 0.0 <= by_key[f'seed0/{kind}/{v}']['top1'] <= 1.0
    assert 0.0 <= by_key['seed0/teacher_probe']['top1'] <= 1.0
    # the variants really differ in what they train on
    assert set(by_key['seed0/pretrain/videomae']['losses']) == {'loss', 'loss_recon'}
    assert set(by_key['seed0/pretrain/amd_serial']['losses']) == {
        'loss', 'loss_recon', 'loss_dir', 'loss_gen'}
    teacher_probe = torch.load(osp.join(out, 'seed0/teacher_probe/exported_backbone.pth'),
                               weights_only=False)['state_dict']
    assert teacher_probe['backbone.blocks.5.attn.qkv.weight'].shape == (384, 128)
    assert len(open(by_key['seed0/data']['data']['val']).read().split('\n')) == 7
    amd = torch.load(by_key['seed0/pretrain/amd_serial']['checkpoint'], weights_only=False)
    mae = torch.load(by_key['seed0/pretrain/videomae']['checkpoint'], weights_only=False)
    assert any(k.startswith('aligner.') for k in amd['state_dict'])
    assert not any(k.startswith('aligner.') for k in mae['state_dict'])
    assert amd['meta']['seed'] == 0 and amd['meta']['epoch'] == 1
    # the linear probe left the exported backbone as it was; fine-tuning moved it
    lp = torch.load(osp.join(out, 'seed0/linear_probe/amd_serial/epoch_1.pth'),
                    weights_only=False)['state_dict']
    ex = torch.load(osp.join(out, 'seed0/linear_probe/amd_serial/exported_backbone.pth'),
                    weights_only=False)['state_dict']
    key = 'backbone.blocks.0.attn.qkv.weight'
    assert torch.equal(lp[key], ex[key])
    paths = write_report(records, p, out)
    assert 'AMD serial D+G' in open(paths['markdown']).read()

    lines.clear()
    assert len(ProtocolRun(p, out, log=lines.append).run()) == len(records)
    assert lines == []
