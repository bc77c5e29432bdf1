"""The reproduction protocol (tools/reproduce.py): protocol loading and
checks, the stage plan, bring-your-own-data validation (file:line before any
training), and a tiny end-to-end run through the real Runner in two worker
processes (real videos, real checkpoints), with resume, then the low-label
addendum on it and the report."""
import json
import os
import os.path as osp
import sys

import pytest

from conftest import CONFIGS, ROOT
from amd_mmaction.reproduce.protocol import (estimate_seconds, load_protocol, plan_stages,
                                             stage_key, units)
from amd_mmaction.reproduce.report import write_report
from amd_mmaction.reproduce.runner import GateFailed, ProtocolRun
from amd_mmaction.reproduce.worker import worker_command

PROTOCOL = osp.join(CONFIGS, 'reproduce', 'motion_protocol.py')
FINETUNE = 'tiny/finetune_tiny_motion.py'
LOWLABEL = osp.join(CONFIGS, 'reproduce', 'motion_protocol_lowlabel.py')
HEADLINE = ['videomae', 'amd_serial', 'amd_serial_random']


def test_protocol_full_and_quick():
    full = load_protocol(PROTOCOL)
    assert len(full['seeds']['headline']) >= 5 and len(full['seeds']['ablation']) >= 3
    for v in HEADLINE:
        assert full['variants'][v]['group'] == 'headline'
    assert full['variants']['amd_serial_random']['teacher'] == 'random'
    assert len(full['variants']) == 8 and full['evaluation']['finetune']
    # every student: the same pre-training epochs, one number for all
    assert 'epochs' not in json.dumps(full['variants'])
    assert len(units(full)) == 3 * 5 + 5 * 3
    quick = load_protocol(PROTOCOL, quick=True)
    assert list(quick['variants']) == HEADLINE and quick['evaluation']['finetune'] is None
    assert len(units(quick)) == 3 * 3
    # the teacher gets far more iterations than any student
    n = full['data']
    assert (full['teacher']['epochs'] * (n['num_pool'] + n['num_train'])
            > 10 * full["pretrain"]["epochs"] * n["num_train"])
    est = estimate_seconds(full)
    assert est['teacher'] <= 60 * 60 and est['total'] <= 150 * 60
    assert estimate_seconds(quick)['total'] <= 15 * 60


def test_plan_order():
    p = load_protocol(PROTOCOL, quick=True)
    keys = [stage_key(s) for s in plan_stages(p)]
    assert keys[:4] == ['data', 'teacher', 'teacher_random', 'gate']
    assert keys[4:7] == ['seed0/pretrain/videomae', 'seed0/features/videomae',
                         'seed0/pretrain/amd_serial']


@pytest.mark.parametrize('overrides,message', [
    ({'data': {'source': 'web'}}, r"data.source must be one of \('synthetic', 'order', 'lists'\)"),
    ({'data': {'num_pool': -1}}, 'data.num_pool'),
    ({'teacher': {'mask_ratio': 1.5}}, 'teacher.mask_ratio'),
    ({'seeds': {'headline': [1, 1]}}, 'seeds.headline'),
    ({'target_norm': 'patch'}, 'target_norm'),
    ({'variants': ['videomae', 'nope']}, r"unknown variant\(s\) \['nope'\]"),
    ({'teacher': {'config': 'tiny/nope.py'}}, r"teacher.config: config 'tiny/nope.py' is not "
                                              'installed'),
    ({'evaluation': {'finetune': {'config': 7}}}, r'evaluation.finetune.config=7: expected'),
])
def test_protocol_errors_name_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_protocol(PROTOCOL, overrides=overrides)


def _lists_protocol(tmp_path, data, **data_keys):
    return load_protocol(PROTOCOL, quick=True, overrides={'data': dict(
        source='lists', root=data['root'], num_classes=6, **data_keys)})


def test_bring_your_own_data_bad_lists_fail_before_training(motion_data, tmp_path):
    bad = tmp_path / 'train.txt'
    good = open(motion_data['train']).read().splitlines()
    bad.write_text('\n'.join([good[0], good[1].split()[0] + ' 9', good[2].replace(' ', '\t')]
                             + good[3:]) + '\n')
    p = _lists_protocol(tmp_path, motion_data, train=str(bad), val=motion_data['val'])
    run = ProtocolRun(p, str(tmp_path / 'out'), log=lambda m: None)
    with pytest.raises(ValueError) as err:
        run.run_shared()
    msg = str(err.value)
    assert f'{bad}:2' in msg and f'{bad}:3' in msg and '[0, 6)' in msg
    assert not osp.exists(tmp_path / 'out' / 'teacher')  # nothing trained
    missing = tmp_path / 'val.txt'
    missing.write_text('val/nowhere.webm 1\n')
    p = _lists_protocol(tmp_path, motion_data, train=motion_data['train'], val=str(missing))
    with pytest.raises(ValueError, match=f'{missing}:1'):
        ProtocolRun(p, str(tmp_path / 'out2'), log=lambda m: None).run_shared()


def test_bring_your_own_data_good_lists(motion_data, tmp_path):
    import numpy as np
    from amd_mmaction.data.synthetic import render_clip, write_video
    pool = tmp_path / 'pool.txt'
    pool.write_text(open(motion_data['val']).read().split()[0] + '\n')  # unlabeled line
    p = _lists_protocol(tmp_path, motion_data, train=motion_data['train'],
                        val=motion_data['val'], pool=str(pool))
    # a validation clip in the teacher's pool is refused, both file:line named
    with pytest.raises(ValueError, match='must never reach') as err:
        ProtocolRun(p, str(tmp_path / 'bad'), log=lambda m: None).run_shared()
    assert f"{motion_data['val']}:1" in str(err.value) and f'{pool}:1' in str(err.value)
    assert not osp.exists(tmp_path / 'bad' / 'teacher')  # nothing trained
    # a clip of its own is accepted
    clip = tmp_path / 'extra' / 'pool_00000.webm'
    write_video(str(clip), render_clip(0, 24, 64, np.random.default_rng(99)))
    pool.write_text(osp.relpath(clip, motion_data['root']) + '\n')  # unlabeled line
    run = ProtocolRun(p, str(tmp_path / 'out'), log=lambda m: None)
    rec = run._run_stage(dict(kind='data', variant=None, seed=None))
    lines = open(rec['data']['pool']).read().splitlines()
    assert len(lines) == 12 + 1 and rec['data']['num_classes'] == 6
    assert rec['data']['sizes'] == dict(train=12, val=6, pool=13)


def test_end_to_end_two_workers_and_resume(tmp_path):
    p = load_protocol(PROTOCOL, quick=True, overrides={
        'data': dict(num_pool=2, num_train=6, num_val=6),
        'teacher': dict(epochs=1, batch_size=4), 'pretrain': dict(epochs=1, batch_size=4),
        'evaluation': dict(finetune=dict(config=FINETUNE, epochs=2,
                                         batch_size=4, val_interval=1)),
        'seeds': dict(headline=[0], ablation=[0]),
        'variants': ['amd_serial', 'amd_serial_random']})
    out = str(tmp_path / 'run')
    logs = []
    run = ProtocolRun(p, out, log=logs.append)
    with pytest.raises(GateFailed, match='gate'):  # one epoch on 8 clips: no teacher
        run.run()
    assert not any(k.startswith('seed') for k in run.records)
    run.run(force=True, workers=2, worker_cmd=worker_command(out, 'WARNING'))
    assert osp.isfile(osp.join(out, 'records.w0.jsonl')) and osp.isfile(
        osp.join(out, 'records.w1.jsonl'))
    assert run.all_done()
    res = write_report(run)
    s = res['summary']
    for v in ('amd_serial', 'amd_serial_random'):
        for m in ('knn_top1', 'linear_top1', 'finetune_top1'):
            assert 0 <= s['variants'][v][m]['mean'] <= 100
        curve = s['finetune_curves'][v][0]['val']
        assert [e for e, _ in curve] == [1, 2]
    assert s['gate']['teacher']['trivial'] > 0 and not s['gate']['teacher']['passed']
    assert 'Teacher gate' in res['markdown'] and 'amd_serial − amd_serial_random' in res['markdown']
    for f in ('results.md', 'results.json', 'results.csv', 'results.png'):
        assert osp.getsize(osp.join(out, f)) > 0
    # the students distilled from different teachers
    t1 = run.records['seed0/pretrain/amd_serial']
    t2 = run.records['seed0/pretrain/amd_serial_random']
    assert t1['losses']['loss_dir'] != t2['losses']['loss_dir']
    # resume: nothing runs again; a deleted student checkpoint reruns that unit only
    logs.clear()
    ProtocolRun(p, out, log=logs.append).run(force=True)
    assert not any(m.endswith('...') for m in logs)
    os.remove(t2['checkpoint'])
    logs.clear()
    ProtocolRun(p, out, log=logs.append).run(force=True)
    started = [m for m in logs if m.endswith('...')]
    assert started == ['[reproduce] seed0/pretrain/amd_serial_random ...',
                       '[reproduce] seed0/features/amd_serial_random ...',
                       '[reproduce] seed0/finetune/amd_serial_random ...']
    # another protocol into the same folder is refused
    with pytest.raises(ValueError, match='another protocol'):
        ProtocolRun(dict(p, workers=3), out)
    _low_label_on(out, tmp_path)


def _low_label_on(base, tmp_path):
    """The low-label addendum on the finished tiny run: a class-balanced
    draw per seed, every student fine-tuned again in two workers, the
    protocol run untouched, resume, and the report with the paired claim."""
    import glob
    from amd_mmaction.reproduce.lowlabel import LowLabelRun
    from amd_mmaction.reproduce.protocol import load_lowlabel
    before = {f: os.stat(f).st_mtime_ns for f in glob.glob(osp.join(base, '**'), recursive=True)}
    ll = load_lowlabel(LOWLABEL, dict(
        per_class=1, finetune=dict(config=FINETUNE, epochs=2, batch_size=4, val_interval=1)))
    out = str(tmp_path / 'lowlabel')
    sys.path.insert(0, ROOT)
    from tools.reproduce import main
    assert main(['lowlabel', '--from', base, '--out', out, '--plan',
                 '--set', 'per_class=1']) is None
    assert not osp.exists(out)  # --plan writes nothing
    with pytest.raises(SystemExit, match='not a protocol run folder'):
        main(['lowlabel', '--from', str(tmp_path), '--plan'])
    logs = []
    run = LowLabelRun(ll, base, out, log=logs.append)
    assert run.plan() == ['seed0/subset/train', 'seed0/lowlabel/amd_serial',
                          'seed0/lowlabel/amd_serial_random']
    run.run(workers=2, worker_cmd=worker_command(out, 'WARNING'))
    assert run.all_done()
    sub = run.records['seed0/subset/train']
    lines = open(sub['train']).read().split('\n')[:-1]
    train = open(run.records['data']['data']['train']).read().split('\n')
    assert sorted(int(x.rsplit(' ', 1)[1]) for x in lines) == list(range(6))  # 1 per class
    assert set(lines) <= set(train)
    for v in ('amd_serial', 'amd_serial_random'):
        r = run.records[f'seed0/lowlabel/{v}']
        assert r['parent_key'] == f'seed0/pretrain/{v}' and r['subset_id'] == sub['id']
        assert 0 <= r['finetune_top1'] <= 100 and [e for e, _ in r['val_curve']] == [1, 2]
        dumped = glob.glob(osp.join(out, f'seed0/lowlabel/{v}/**/*.py'), recursive=True)
        # trained on the draw, not on the protocol run's train list
        assert dumped and all(sub['train'] in open(f).read() for f in dumped)
    after = {f: os.stat(f).st_mtime_ns for f in glob.glob(osp.join(base, '**'), recursive=True)}
    assert after == before  # the protocol run is only read
    res = write_report(run)  # a low-label run's report: its own column and curves
    assert '| amd_serial − amd_serial_random: knowledge transfer' in res['markdown']
    assert 'fine-tune, 1 labels/class' in res['markdown'] and 'This run:' in res['markdown']
    assert res['summary']['finetune_curves']['amd_serial'][0]['val']
    # the report of a copy of both folders (moved, checkpoints gone) is the same report
    _report_of_a_copy(base, out, res['markdown'], tmp_path)
    # resume: nothing runs again; a new draw (subset removed) reruns every fine-tuning
    logs.clear()
    LowLabelRun(ll, base, out, log=logs.append).run(workers=1)
    assert not any(m.endswith('...') for m in logs)
    os.remove(sub['train'])
    logs.clear()
    LowLabelRun(ll, base, out, log=logs.append).run(workers=1)
    assert [m for m in logs if m.endswith('...')] == [
        '[reproduce] seed0/subset/train ...', '[reproduce] seed0/lowlabel/amd_serial ...',
        '[reproduce] seed0/lowlabel/amd_serial_random ...']
    with pytest.raises(ValueError, match='per_class=9 but label'):
        LowLabelRun(dict(ll, per_class=9), base, str(tmp_path / 'll9'), log=logs.append).run()


def _report_of_a_copy(base, low, low_markdown, tmp_path):
    """The records alone make the report: copies of both folders without a
    checkpoint or a video (as in docs/results/), the protocol run moved
    (--from), give the same tables."""
    import shutil
    from tools.reproduce import main
    copies = {}
    for name, src in (('run', base), ('low', low)):
        copies[name] = dst = str(tmp_path / 'copy' / name)
        os.makedirs(dst)
        for f in os.listdir(src):
            if f.endswith(('.json', '.jsonl')) and not f.startswith('results'):
                shutil.copy(osp.join(src, f), dst)
    assert main(['report', '--out', copies['low'], '--from', copies['run']])['markdown'] \
        == low_markdown
    assert main(['report', '--out', copies['run']])['markdown'] \
        == main(['report', '--out', base])['markdown']
    with pytest.raises(SystemExit, match='not a reproduction run folder'):
        main(['report', '--out', str(tmp_path / 'copy')])


def test_only_the_teacher_stage_continues_an_interrupted_run(tmp_path):
    from amd_mmaction.reproduce.stages import resumable
    work = tmp_path / 'stage'
    work.mkdir()
    (work / 'epoch_5.pth').write_bytes(b'x')
    pointer = work / 'last_checkpoint'
    pointer.write_text('epoch_5.pth')
    assert resumable(str(work), allowed=True) and pointer.exists()
    assert not resumable(str(work), allowed=False) and not pointer.exists()
    pointer.write_text('epoch_10.pth')  # names a deleted checkpoint: start over
    assert not resumable(str(work), allowed=True) and not pointer.exists()
    assert not resumable(str(work), allowed=True)  # no pointer at all


@pytest.mark.parametrize('overrides,message', [
    ({'per_clas': 3}, r"unknown key\(s\) \['per_clas'\]"),
    ({'per_class': 0}, 'per_class must be an int >= 1, got 0'),
    ({'finetune': {'val_interval': 0}}, 'finetune.val_interval must be an int >= 1'),
])
def test_lowlabel_addendum_errors_name_the_key(overrides, message):
    from amd_mmaction.reproduce.protocol import load_lowlabel
    with pytest.raises(ValueError, match=message):
        load_lowlabel(LOWLABEL, overrides)


def test_balanced_subset_is_balanced_seeded_and_in_file_order(tmp_path):
    from amd_mmaction.reproduce.lowlabel import balanced_subset
    src = tmp_path / 'train.txt'
    src.write_text(''.join(f'v{i}.webm {i % 3}\n' for i in range(30)))  # 10 per label
    a, b, c = (str(tmp_path / n) for n in ('a.txt', 'b.txt', 'c.txt'))
    assert balanced_subset(str(src), 4, 7, a) == {0: 4, 1: 4, 2: 4}
    balanced_subset(str(src), 4, 7, b)
    balanced_subset(str(src), 4, 8, c)
    lines = open(a).read().splitlines()
    assert open(b).read() == open(a).read() != open(c).read()  # one draw per seed
    assert [int(x.rsplit(' ', 1)[1]) for x in lines].count(2) == 4
    order = [int(x.split()[0][1:-5]) for x in lines]
    assert order == sorted(order) and set(lines) <= set(src.read_text().splitlines())
    with pytest.raises(ValueError, match=r'per_class=11 but label\(s\) \[0, 1, 2\] have only'):
        balanced_subset(str(src), 11, 0, a)
