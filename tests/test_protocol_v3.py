"""Protocol v3 (configs/reproduce/teacher_protocol.py, issue 21): the file
and its checks, the stage plan over two data sets, the dose-response
report's figures against hand-computed ones (pairing by seed included), the
seed sizing, and a tiny end-to-end run (teacher stages kept, every stage
gated against the untrained network, a larger teacher, students from each
stage) through the real Runner."""
import json
import math
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from conftest import CONFIGS, ROOT
from amd_mmaction.reproduce.dose import summarize_dose
from amd_mmaction.reproduce.protocol import (all_stage_keys, arm_names, arm_protocol,
                                             checkpoint_interval, dose_variant, estimate_all,
                                             load_lowlabel, load_protocol, seeds_of,
                                             teacher_stages, units)
from amd_mmaction.reproduce.report import per_seed
from amd_mmaction.reproduce.runner import ProtocolRun
from amd_mmaction.reproduce.sizing import half_width, seeds_needed

V3 = osp.join(CONFIGS, 'reproduce', 'teacher_protocol.py')


def test_v3_file_full_and_quick():
    full = load_protocol(V3)
    assert arm_names(full) == ['motion', 'order']
    for name in arm_names(full):
        p = arm_protocol(full, name)
        stages = teacher_stages(p)
        assert stages[0] == 0 and stages[-1] == p['teacher']['epochs'] and len(stages) >= 5
        assert checkpoint_interval(p['teacher']) == stages[1]
        # one AMD serial student per stage, same seeds, at least 8 for AMD vs control
        dose = [dose_variant(p, e) for e in stages]
        assert dose[0] == 'amd_serial_random' and dose[-1] == 'amd_serial'
        assert len({tuple(seeds_of(p, v)) for v in dose}) == 1
        assert len(seeds_of(p, 'amd_serial')) >= 8
        # the larger teacher: ~3x the cost per iteration, a third of the epochs
        large = p['teachers']['large']
        assert large['epochs'] * 3 == pytest.approx(p['teacher']['epochs'], abs=1)
        assert p['teacher']['gate']['vs_untrained']
    assert estimate_all(full)['total'] <= 6 * 3600
    quick = load_protocol(V3, quick=True)
    assert arm_names(quick) == ['motion'] and not quick.get('teachers')
    q = arm_protocol(quick, 'motion')
    assert teacher_stages(q) == [0, 20, 40] and len(units(q)) == 4 * 3
    assert estimate_all(quick)['total'] <= 20 * 60
    keys = all_stage_keys(quick)
    assert keys[:5] == ['motion/data', 'motion/teacher', 'motion/teacher_random', 'motion/gate',
                        'motion/stage_gate@epoch_20']


@pytest.mark.parametrize('overrides,message', [
    ({'teacher': {'stages': [0, 10, 30]}}, r'teacher.stages=\[0, 10, 30\].*up to teacher.epochs=40'),
    ({'teacher': {'stages': [0, 20, 10, 40]}}, 'expected increasing epochs'),
    ({'teacher': {'stages': [0, 10, 25, 40]}},
     r"teacher='epoch_20'; expected one of .*listed in teacher.stages"),
    ({'variants': ['videomae', 'amd_serial', 'amd_serial_random', 'amd_serial_e10',
                   'amd_serial_e30', 'amd_serial_large']},
     r"dose: no variant of manner 'serial' distils from teacher stage\(s\) \['epoch_20'\]"),
    ({'teachers': {'trained': {'config': 'tiny/videomae_teacher_tiny_motion.py', 'epochs': 1,
                               'batch_size': 8, 'mask_ratio': 0.75}}},
     'teachers.trained: that name means a stage'),
    ({'teacher': {'gate': {'vs_untrained': 'yes'}}}, 'teacher.gate.vs_untrained must be True'),
    ({'datasets': {'order': {'data': {'source': 'web'}}}},
     r"\[datasets.order\]: data.source must be one of \('synthetic', 'order', 'lists'\)"),
    ({'datasets': {'order': None, 'motion': None}}, 'every data set was dropped'),
    ({'dose': {'manner': 'parallel'}}, r"dose: no variant of manner 'parallel'"),
])
def test_v3_errors_name_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_protocol(V3, overrides=overrides)


def test_checkpoint_interval_is_the_stage_spacing():
    assert checkpoint_interval(dict(epochs=40, stages=[0, 10, 20, 30, 40])) == 10
    assert checkpoint_interval(dict(epochs=24, stages=[0, 4, 6, 24])) == 2
    assert checkpoint_interval(dict(epochs=60)) == 5  # v2: every 5 epochs


# -- the dose-response figures, from hand-written records ----------------------
def _gate(probe, knn, probe_margin_low):
    return dict(recon=0.01, trivial=0.02, recon_ratio=0.5, margin=0.9, factor=3.0, chance=12.5,
                probe_top1=probe, knn_top1=knn, passed=True, reasons=[],
                vs_untrained={m: dict(margin=1.0, interval=(probe_margin_low, 2.0),
                                      passed=probe_margin_low > 0) for m in ('probe', 'knn')})


def _dose_run(tmp_path):
    p = arm_protocol(load_protocol(V3), 'order')
    p['teacher'].update(epochs=20, stages=[0, 10, 20])
    p['variants'] = {v: p['variants'][v] for v in ('amd_serial_random', 'amd_serial_e10',
                                                   'amd_serial')}
    p['teachers'] = None
    p['claims'] = [c for c in p['claims'] if c[0] in p['variants'] and c[1] in p['variants']]
    out = str(tmp_path / 'run')
    run = ProtocolRun(p, out, log=lambda m: None)
    # teacher probe 20 / 30 / 50 at stages untrained / epoch_10 / epoch_20
    run.store.save(dict(key='gate', id='g', finished=1, gate=dict(
        teacher_random=_gate(20.0, 15.0, -1.0), teacher=_gate(50.0, 30.0, 0.5))))
    run.store.save(dict(key='stage_gate@epoch_10', id='s', finished=1,
                        gate=_gate(30.0, 20.0, -0.5)))
    # students' k-NN by stage and seed; seed 2 lacks the epoch_10 student
    knn = {'amd_serial_random': {0: 10, 1: 12, 2: 14}, 'amd_serial_e10': {0: 13, 1: 14},
           'amd_serial': {0: 19, 1: 18, 2: 30}}
    for v, by_seed in knn.items():
        for seed, value in by_seed.items():
            run.store.save(dict(key=f'seed{seed}/features/{v}', id=f'{v}{seed}', finished=1,
                                knn_top1=float(value), linear_top1=float(2 * value)))
    return run


def test_dose_summary_hand_computed(tmp_path):
    d = summarize_dose(_dose_run(tmp_path), per_seed)
    rows = {r['stage']: r for r in d['stages']}
    assert [r['stage'] for r in d['stages']] == ['untrained', 'epoch_10', 'epoch_20']
    assert [r['variant'] for r in d['stages']] == ['amd_serial_random', 'amd_serial_e10',
                                                   'amd_serial']
    # the untrained stage is the untrained network: no "counts as trained" for it
    assert rows['untrained']['gate']['trained'] is None
    assert rows['epoch_10']['gate']['trained'] is False
    assert rows['epoch_20']['gate']['trained'] is True
    s = rows['epoch_20']['students']['knn_top1']
    assert s['mean'] == pytest.approx(67 / 3) and s['n'] == 3
    # t interval: 22.333 +/- 4.3026527 * sd / sqrt(3), sd of (19, 18, 30)
    sd = np.std([19, 18, 30], ddof=1)
    half = 4.3026527 * sd / math.sqrt(3)
    assert s['t'] == pytest.approx((67 / 3 - half, 67 / 3 + half), abs=1e-5)
    # slope: only seeds 0 and 1 are at every stage (pairing by seed). x = 20, 30, 50
    # (mean 33.33, Sxx = 466.67); seed 0: y = 10, 13, 19 -> slope = sum dx*y / Sxx
    x = np.array([20.0, 30.0, 50.0])
    dx = x - x.mean()
    b0 = float((dx * np.array([10, 13, 19])).sum() / (dx ** 2).sum())
    b1 = float((dx * np.array([12, 14, 18])).sum() / (dx ** 2).sum())
    sl = d['slopes']['knn_top1']
    assert sl['per_seed'] == pytest.approx({0: b0, 1: b1})
    assert sl['slope'] == pytest.approx((b0 + b1) / 2) and sl['n_seeds'] == 2
    half = 12.706204736 * abs(b0 - b1) / math.sqrt(2) / math.sqrt(2)
    assert sl['t'] == pytest.approx(((b0 + b1) / 2 - half, (b0 + b1) / 2 + half), abs=1e-6)
    assert d['slopes']['linear_top1']['slope'] == pytest.approx(2 * sl['slope'])


def test_slope_over_chosen_stages_hand_computed(tmp_path):
    # the slope over untrained and epoch_20 only: seed 2 (no epoch_10 student) now counts;
    # each seed's slope is (y at epoch_20 - y untrained) / (50 - 20)
    d = summarize_dose(_dose_run(tmp_path), per_seed, slope_stages=['untrained', 'epoch_20'])
    assert d['slope_stages'] == ['untrained', 'epoch_20']
    sl = d['slopes']['knn_top1']
    assert sl['per_seed'] == pytest.approx({0: 9 / 30, 1: 6 / 30, 2: 16 / 30})
    assert sl['n_seeds'] == 3 and sl['n_stages'] == 2
    assert sl['slope'] == pytest.approx(31 / 90)
    with pytest.raises(ValueError, match=r"\['epoch_5'\] are not stages of this run"):
        summarize_dose(_dose_run(tmp_path / 'again'), per_seed, slope_stages=['epoch_5'])


def test_slope_tool_on_the_committed_motion_run():
    out = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'reproduce.py'), 'slope',
                          '--out', osp.join(ROOT, 'docs', 'results', 'v3_full', 'motion'),
                          '--stages', 'epoch_10', 'epoch_40'],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'Exploratory' in out.stdout and 'n=8 seeds x 2 stages' in out.stdout


def test_dose_of_a_lowlabel_measure(tmp_path):
    # the low-label addendum's fine-tuning top-1 as the student metric (pairing by seed)
    run = _dose_run(tmp_path)
    ft = {'amd_serial_random': {0: 30, 1: 40}, 'amd_serial_e10': {0: 35, 1: 40},
          'amd_serial': {0: 50, 1: 40}}
    for v, by_seed in ft.items():
        for seed, value in by_seed.items():
            run.store.save(dict(key=f'seed{seed}/lowlabel/{v}', id=f'l{v}{seed}', finished=1,
                                finetune_top1=float(value)))
    d = summarize_dose(run, per_seed, [('finetune_top1', 'fine-tune', 'lowlabel')])
    assert d['metrics'] == [['finetune_top1', 'fine-tune']]
    assert d['stages'][2]['students']['finetune_top1']['mean'] == 45.0
    x = np.array([20.0, 30.0, 50.0])
    dx = x - x.mean()
    b0 = float((dx * np.array([30, 35, 50])).sum() / (dx ** 2).sum())
    assert d['slopes']['finetune_top1']['per_seed'] == pytest.approx({0: b0, 1: 0.0})
    ll = load_lowlabel(osp.join(CONFIGS, 'reproduce', 'teacher_protocol_lowlabel.py'))
    assert ll['per_class'] == 10 and ll['finetune']['epochs'] == 32


def test_dose_report_renders(tmp_path):
    from amd_mmaction.reproduce.report import write_report
    run = _dose_run(tmp_path)
    res = write_report(run)
    md = res['markdown']
    assert '### Dose-response' in md and '| epoch_10 | 30.0% | amd_serial_e10 |' in md
    assert '| epoch_10 | 0.500 | 30.0% | 20.0% |' in md and '| **no** |' in md
    assert osp.isfile(osp.join(run.out, 'dose.png'))


def test_busy_time_is_the_union_of_stage_intervals(tmp_path):
    # a run stopped and resumed: two workers overlap (100-160 and 150-200), a gap (200-1000)
    # when nothing ran, then one stage (1000-1030); the base run's stages are not this run's
    from amd_mmaction.reproduce.records import RecordStore
    for d in ('base', 'run'):
        (tmp_path / d).mkdir()
    base = RecordStore(str(tmp_path / 'base'))
    base.save(dict(key='teacher', id='t', started=0.0, finished=5000.0))
    store = RecordStore(str(tmp_path / 'run'), base=base)
    for key, a, b in (('a', 100.0, 160.0), ('b', 150.0, 200.0), ('c', 1000.0, 1030.0),
                      ('d', 110.0, 120.0)):
        store.save(dict(key=key, id=key, started=a, finished=b))
    assert store.busy_seconds() == 130.0  # the store that saved them, not only a reread
    assert RecordStore(str(tmp_path / 'run'), read_only=True, base=base).busy_seconds() == 130.0


def test_seed_sizing_hand_computed():
    # t_{0.975, 7} = 2.364624; sd 10 over 8 seeds -> 2.364624 * 10 / sqrt(8) = 8.3602
    assert half_width(10.0, 8) == pytest.approx(8.36021, abs=1e-4)
    assert half_width(10.0, 1) == math.inf
    n = seeds_needed(10.0, 5.0)
    assert half_width(10.0, n) <= 5.0 < half_width(10.0, n - 1)


def test_plan_prints_widths_from_a_committed_run():
    out = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'reproduce.py'), 'plan', V3,
                          '--quick', '--widths-from', osp.join(ROOT, 'docs', 'results',
                                                               'v2_full')],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'motion/stage_gate@epoch_20' in out.stdout
    assert '| motion | amd_serial − amd_serial_random | linear probe |' in out.stdout
    assert 'expected 95% half-width' in out.stdout


# -- a tiny run, end to end ------------------------------------------------------
def _tiny_v3(tmp_path):
    from amd_mmaction.reproduce.protocol import check_protocol
    p = arm_protocol(load_protocol(V3), 'order')
    p['data'].update(num_train=8, num_pool=0, num_val=8)
    p['teacher'].update(epochs=2, stages=[0, 1, 2])
    p['teachers']['large'].update(epochs=1)
    p['pretrain'] = dict(epochs=1, batch_size=4)
    p['seeds'] = dict(headline=[0, 1], ablation=[0, 1])
    s = dict(p['variants']['amd_serial'])
    p['variants'] = dict(amd_serial_random=p['variants']['amd_serial_random'],
                         amd_serial_e1=dict(s, label='epoch 1', teacher='epoch_1'),
                         amd_serial=s, amd_serial_large=p['variants']['amd_serial_large'])
    p['claims'] = [c for c in p['claims'] if 'videomae' not in c[:2]]
    p['workers'] = 1
    return check_protocol(p)


def test_v3_tiny_end_to_end(tmp_path):
    from amd_mmaction.reproduce.report import write_report
    p = _tiny_v3(tmp_path)
    out = str(tmp_path / 'run')
    run = ProtocolRun(p, out, log=lambda m: None)
    run.run()
    rec = run.records
    # every stage's checkpoint kept and recorded; each stage gated
    assert set(rec['teacher']['stages']) == {'untrained', 'epoch_1', 'epoch_2'}
    assert rec['teacher']['stages']['untrained'] is None
    assert osp.isfile(rec['teacher']['stages']['epoch_1'])
    gates = run.stage_gates()
    assert list(gates) == ['untrained', 'epoch_1', 'epoch_2']
    for name, g in gates.items():
        # per-clip correctness agrees with the top-1s
        assert len(g['probe_correct']) == len(g['knn_correct']) == 8
        assert 100 * sum(g['probe_correct']) / 8 == pytest.approx(g['probe_top1'])
        assert 100 * sum(g['knn_correct']) / 8 == pytest.approx(g['knn_top1'])
        if name != 'untrained':
            assert set(g['vs_untrained']) == {'probe', 'knn'}
    # the larger teacher: its own gate beside an untrained network of its shape
    large = rec['gate@large']['gate']
    assert large['teacher']['vs_untrained'] and 'knn_correct' in large['untrained']
    from amd_mmaction.weights.io import load_checkpoint_file
    sd = load_checkpoint_file(rec['teacher@large']['checkpoint'])['state_dict']
    assert sd['student.patch_embed.proj.weight'].shape[0] == 192
    # a student of the epoch-1 stage is built on that stage's gate and distils epoch_1.pth
    pre = rec['seed0/pretrain/amd_serial_e1']
    assert pre['parent_key'] == 'stage_gate@epoch_1'
    with open(pre['config']) as f:
        assert rec['teacher']['stages']['epoch_1'] in f.read()
    with open(rec['seed0/pretrain/amd_serial_large']['config']) as f:
        text = f.read()
    assert "embed_dims=192" in text.replace(' ', '') and 'teacher@large' in text
    res = write_report(run)
    d = res['summary']['dose']
    assert [r['stage'] for r in d['stages']] == ['untrained', 'epoch_1', 'epoch_2']
    assert all(r['students']['knn_top1']['n'] == 2 for r in d['stages'])
    # the copy to commit (records, reports, no checkpoints) re-makes the same report
    from amd_mmaction.reproduce.records import compare_runs, copy_run
    copied = copy_run(out, str(tmp_path / 'copy'))
    assert not any(x.endswith('.pth') for x in copied)
    assert {osp.basename(x) for x in copied} >= {'protocol.json', 'records.jsonl', 'results.md',
                                                'dose.png', 'sessions.jsonl'}
    again_md = write_report(ProtocolRun(p, str(tmp_path / 'copy'), read_only=True))['markdown']
    assert again_md == res['markdown']
    assert compare_runs(out, str(tmp_path / 'copy'))['differences'] == []
    # a rerun resumes: nothing runs again
    again = ProtocolRun(p, out, log=lambda m: None)
    before = {k: r['id'] for k, r in again.records.items()}
    again.run()
    assert {k: r['id'] for k, r in again.records.items()} == before
