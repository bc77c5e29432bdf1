"""The stages shared by the reproduction protocol and the quick start
(amd_mmaction/reproduce/stages.py), the command line of tools/reproduce.py
(plan, --set, report), the committed results' reports rebuilt from their
records alone, and the quick start (tools/quickstart.py) on a few clips."""
import os
import os.path as osp
import shutil
import sys

import pytest

from conftest import CONFIGS, ROOT
from amd_mmaction.reproduce.cli import parse_overrides
from amd_mmaction.reproduce.protocol import load_protocol, resolve_config
from amd_mmaction.reproduce.stages import (DISTILLED_CONFIG, MASK_KEY, STUDENT_CONFIGS,
                                           pretrain_config, schedule_for, variant_options)

PROTOCOL = osp.join(CONFIGS, 'reproduce', 'motion_protocol.py')
RESULTS = osp.join(ROOT, 'docs', 'results')
sys.path.insert(0, ROOT)


def test_config_names_resolve_to_the_installed_configs(tmp_path):
    path = resolve_config('tiny/amd_tiny_motion.py')
    assert path.endswith(osp.join('tiny', 'amd_tiny_motion.py')) and osp.isfile(path)
    assert open(path).read() == open(osp.join(CONFIGS, 'tiny', 'amd_tiny_motion.py')).read()
    mine = tmp_path / 'mine.py'
    mine.write_text('x = 1\n')
    assert resolve_config(str(mine)) == str(mine)
    with pytest.raises(FileNotFoundError, match="'tiny/nope.py' is not installed"):
        resolve_config('tiny/nope.py')
    with pytest.raises(FileNotFoundError, match='nope.py does not exist'):
        resolve_config(str(tmp_path / 'nope.py'))


def test_schedule_refit():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', 'amd_tiny_motion.py'))
    warm, cos = schedule_for(cfg, 5)
    assert (warm['begin'], warm['end']) == (0, 1)
    assert (cos['begin'], cos['end'], cos['T_max']) == (1, 5, 4)
    assert [s['type'] for s in schedule_for(cfg, 1)] == ['LinearLR']


def test_every_variant_sets_its_mask_and_manner(tmp_path):
    """The cfg-options of each protocol variant land on the model and the
    mask transform (built with mmaction's registry)."""
    from mmaction.registry import TRANSFORMS
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
        assert cfg.train_dataloader.dataset.ann_file == 'train.txt'
        if v['manner'] != 'none':
            assert cfg.model.teacher.checkpoint == 'teacher.pth'
        else:
            assert cfg.model.get('teacher') is None
    serial = ('serial', 'asymmetric', 0.75, 0.9)
    assert seen == {
        'videomae': ('none', 'tube', None, 0.9), 'amd_serial': serial,
        'amd_serial_random': serial,  # the same student; only its teacher differs
        'amd_parallel': ('parallel', 'asymmetric', 0.75, 0.9),
        'amd_direct': ('direct', 'asymmetric', 0.75, 0.9),
        'amd_generation': ('generation', 'asymmetric', 0.75, 0.9),
        'dmae': ('direct', 'symmetric', 0.9, 0.9),
        'amd_serial_tr50': ('serial', 'asymmetric', 0.5, 0.9),
    }
    assert MASK_KEY.endswith('pipeline.3.transforms.3')


def test_quickstart_configs_are_the_tiny_configs_refitted(tmp_path):
    """Without a batch size and seed (the quick start) a stage config is the
    tiny config with only its data, epochs, schedule and checkpoint interval
    changed: what tools/train.py --cfg-options gave the demo before."""
    from mmengine.config import Config
    data = dict(train='/d/train.txt', root='/d/videos')
    for name, epochs, extra in (('videomae_teacher_tiny_motion.py', 24, {}),
                                ('amd_tiny_motion.py', 8, {'model.teacher.checkpoint': 't.pth'})):
        cfg = pretrain_config(f'tiny/{name}', data, str(tmp_path), epochs, extra=extra)
        old = Config.fromfile(osp.join(CONFIGS, 'tiny', name))
        old.merge_from_dict(dict({
            'train_dataloader.dataset.ann_file': data['train'],
            'train_dataloader.dataset.data_prefix.video': data['root'],
            'train_cfg.max_epochs': epochs, 'default_hooks.checkpoint.interval': epochs,
            'param_scheduler.1.T_max': epochs - 1, 'param_scheduler.1.end': epochs,
            'work_dir': str(tmp_path)}, **extra))
        new = cfg.to_dict()
        assert new.pop('experiment_name')
        assert new == old.to_dict()


def test_parse_overrides():
    assert parse_overrides(['a.b=1', 'a.c=x', "v=['p', 'q']", 'f=true', 'n=null']) == dict(
        a=dict(b=1, c='x'), v=['p', 'q'], f=True, n=None)
    assert parse_overrides(None) == {}
    with pytest.raises(SystemExit, match="--set expects key=value, got 'oops'"):
        parse_overrides(['oops'])


def test_plan_prints_the_stages(capsys):
    from tools.reproduce import main
    v2 = osp.join(ROOT, 'configs', 'reproduce', 'motion_protocol.py')
    assert main(['plan', v2, '--quick', '--set', 'seeds.headline=[0]', '--workers', '3']) is None
    out = capsys.readouterr().out.splitlines()
    keys = [x for x in out if x in ('data', 'teacher', 'teacher_random', 'gate')
            or x.startswith('seed')]
    assert keys == ['data', 'teacher', 'teacher_random', 'gate'] + [
        f'seed0/{k}/{v}' for v in ('videomae', 'amd_serial', 'amd_serial_random')
        for k in ('pretrain', 'features')]
    estimate = [x for x in out if x.startswith('rough estimate')]
    assert len(estimate) == 1 and 'on 3 worker(s)' in estimate[0]
    # the expected interval widths from the committed v2 run's spread (one seed: none)
    assert any('expected 95% interval half-widths' in x for x in out)
    with pytest.raises(SystemExit):
        main(['plan', '--nope'])


@pytest.mark.parametrize('run,base', [('v2_quick', None), ('v2_full', None),
                                      ('v2_lowlabel', 'v2_full')])
def test_committed_results_make_the_same_report(run, base, tmp_path):
    """docs/results/ holds records without checkpoints, made on another
    machine: `report` on a copy gives the committed tables again."""
    from tools.reproduce import main
    out = str(tmp_path / run)
    shutil.copytree(osp.join(RESULTS, run), out)
    args = ['report', '--out', out]
    if base:
        with pytest.raises(SystemExit, match='pass the folder where it is now'):
            main(args)
        shutil.copytree(osp.join(RESULTS, base), str(tmp_path / base))
        args += ['--from', str(tmp_path / base)]
    res = main(args)
    for name in ('results.md', 'results.csv'):
        with open(osp.join(RESULTS, run, name)) as f:
            assert open(osp.join(out, name)).read() == f.read(), name
    assert res['summary']['complete']


def test_run_folders_are_the_tools_own(tmp_path):
    """run / lowlabel never write into a folder that is not a run folder, nor
    into the run a low-label run reads."""
    from tools.reproduce import main
    other = tmp_path / 'notes'
    other.mkdir()
    (other / 'todo.txt').write_text('mine')
    with pytest.raises(SystemExit, match='holds other files and is not a run folder'):
        main(['run', '--quick', '--out', str(other)])
    assert sorted(p.name for p in other.iterdir()) == ['todo.txt']
    base = str(tmp_path / 'v2_quick')
    shutil.copytree(osp.join(RESULTS, 'v2_quick'), base)
    before = {p: open(osp.join(base, p), 'rb').read() for p in os.listdir(base)
              if osp.isfile(osp.join(base, p))}
    with pytest.raises(SystemExit, match=r'is the run it reads \(--from\)'):
        main(['lowlabel', '--from', base, '--out', base])
    assert {p: open(osp.join(base, p), 'rb').read() for p in before} == before


def test_compare_finds_every_moved_figure(tmp_path, capsys):
    """`compare` is the refactor pin: the committed before/after runs agree
    on every figure; one changed figure, or a missing stage, is named."""
    from tools.reproduce import main
    pin = osp.join(RESULTS, 'pin_one_house')
    res = main(['compare', osp.join(pin, 'before', 'v2small'), osp.join(pin, 'after', 'v2small')])
    assert res['differences'] == [] and res['records'] == 16 and res['figures'] > 100
    moved = str(tmp_path / 'moved')
    shutil.copytree(osp.join(pin, 'after', 'v2small'), moved)
    lines = open(osp.join(moved, 'records.jsonl')).read().splitlines()
    gate = [i for i, x in enumerate(lines) if '"kind": "gate"' in x][0]
    lines[gate] = lines[gate].replace('"probe_top1": 26.666666666666668',
                                      '"probe_top1": 26.666666666666664')
    open(osp.join(moved, 'records.jsonl'), 'w').write('\n'.join(lines) + '\n')
    with pytest.raises(SystemExit) as exit_:
        main(['compare', osp.join(pin, 'before', 'v2small'), moved])
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert 'gate.gate.teacher.probe_top1: 26.666666666666668 vs 26.666666666666664' in out
    assert '1 difference(s)' in out
    with pytest.raises(SystemExit, match='is not a run folder'):
        main(['compare', pin, moved])


def test_quickstart_on_a_few_clips(tmp_path, capsys):
    """tools/quickstart.py end to end (1 epoch per stage, 6 + 6 clips): both
    students pre-trained, fine-tuned and tested, the summary written."""
    import json
    from tools.quickstart import main
    work = tmp_path / 'demo'
    main(['--work-dir', str(work), '--teacher-epochs', '1', '--student-epochs', '1',
          '--finetune-epochs', '1', '--num-train', '6', '--num-val', '6'])
    out = capsys.readouterr().out
    assert 'AMD       student: top-1' in out and 'VideoMAE  student: top-1' in out
    summary = json.load(open(work / 'demo_summary.json'))
    assert set(summary['top1']) == {'AMD', 'VideoMAE'}
    assert set(summary['losses']['amd_student']) == {'loss', 'loss_recon', 'loss_dir',
                                                     'loss_gen'}
    assert (work / 'amd_student' / 'epoch_1.pth').is_file()
