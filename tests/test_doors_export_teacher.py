"""Doors that must say what they do (issue 19, round three):

* a fine-tuned checkpoint exported again keeps its trained ``fc_norm`` and
  its classifier (or leaves the classifier behind on ``--drop-classifier``),
  and the printed summary names everything kept, dropped and newly
  initialised;
* a fine-tuning config whose ``num_heads`` does not fit the checkpoint is
  refused before training, with the fix (both doors: ``load_from`` and
  ``AMDPretrained``; more and fewer heads);
* a run remembers its teacher: ``--resume`` with another teacher file is
  refused naming both fingerprints unless ``allow_teacher_change=True``, and
  a fine-tuned classifier given as teacher is named as such in the log.

Real checkpoints: a 1-epoch tiny AMD pre-training and a 1-epoch fine-tuning
from its export, through the Runner; real tools/train.py processes.
"""
import glob
import importlib.util
import logging
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from amd_mmaction.engine.cli import run_main
from amd_mmaction.engine.hooks.teacher_identity import SHAPE_KEY, TEACHER_KEY
from amd_mmaction.reproduce.stages import export_and_finetune, finetune_config
from amd_mmaction.teacher.frozen import state_fingerprint
from amd_mmaction.weights import CheckpointMismatch, export_checkpoint
from conftest import CONFIGS, tiny_config
from mmaction.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
init_default_scope('mmaction')


def run(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc.returncode, proc.stdout.decode()


def snapshot(folder):
    paths = [osp.join(dp, f) for dp, _, fs in os.walk(folder) for f in fs]
    return {p: (os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths}


def export_cli():
    spec = importlib.util.spec_from_file_location(
        'export_cli_doors', osp.join(ROOT, 'tools', 'export_checkpoint.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


@pytest.fixture(scope='module')
def pretrain_ckpt(motion_data, tmp_path_factory):
    work = tmp_path_factory.mktemp('pre')
    cfg = tiny_config('amd_tiny_motion.py', motion_data, work,
                      **{'train_cfg.max_epochs': 1, 'model.teacher.checkpoint': None})
    Runner.from_cfg(cfg).train()
    return str(work / 'epoch_1.pth')


@pytest.fixture(scope='module')
def finetuned(pretrain_ckpt, motion_data, tmp_path_factory):
    """(fine-tuned checkpoint, the export it started from): a real
    Recognizer3D fine-tuned 1 epoch from the exported pre-training."""
    work = str(tmp_path_factory.mktemp('ft'))
    out = export_and_finetune(pretrain_ckpt, motion_data, work,
                              **{'train_cfg.max_epochs': 1, 'train_dataloader.batch_size': 4,
                                 'test_dataloader.batch_size': 6})
    return osp.join(work, 'epoch_1.pth'), out['exported']


def state_of(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


# -- export of a fine-tuned checkpoint -------------------------------------------------
def test_reexport_keeps_trained_fc_norm_and_classifier(finetuned, tmp_path, capsys):
    tuned_path, _ = finetuned
    tuned = state_of(tuned_path)
    assert not torch.equal(tuned['backbone.fc_norm.weight'], torch.ones(96))  # it trained
    out = str(tmp_path / 'again.pth')
    export_cli().main([tuned_path, out, '--num-frames', '8', '--img-size', '64'])
    printed = capsys.readouterr().out
    assert ('kept from the fine-tuned checkpoint: fc_norm (fc_norm.bias, fc_norm.weight), '
            'trained; classifier (cls_head.fc_cls.bias, cls_head.fc_cls.weight)') in printed
    assert 'newly initialised: nothing' in printed and 'dropped: nothing' in printed
    assert 'num_heads: meta.cfg model.backbone.num_heads' in printed
    again = state_of(out)
    assert sorted(again) == sorted(tuned)  # the whole recogniser, nothing else
    for key, value in tuned.items():
        assert torch.equal(again[key], value), key
    # The same function: a recogniser built from the fine-tuning config gives
    # the fine-tuned model's scores from the re-export, loaded strictly.
    model_cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', 'finetune_tiny_motion.py')).model
    mine, theirs = MODELS.build(model_cfg).eval(), MODELS.build(model_cfg).eval()
    mine.load_state_dict(again, strict=True)
    theirs.load_state_dict(tuned, strict=True)
    x = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(mine.cls_head(mine.backbone(x)),
                                   theirs.cls_head(theirs.backbone(x)), rtol=0, atol=0)


def test_reexport_for_another_clip_length_and_drop_classifier(finetuned, tmp_path, capsys):
    tuned_path, _ = finetuned
    tuned = state_of(tuned_path)
    out = str(tmp_path / 'sixteen.pth')
    info = export_checkpoint(tuned_path, out, num_frames=16, img_size=64,
                             keep_classifier=False)
    assert info['kept'] == ['fc_norm.bias', 'fc_norm.weight'] and info['fresh'] == []
    assert info['classifier'] == []
    assert info['left_behind'] == ['cls_head.fc_cls.bias', 'cls_head.fc_cls.weight']
    written = state_of(out)
    assert not any(k.startswith('cls_head.') for k in written)
    assert torch.equal(written['backbone.fc_norm.weight'], tuned['backbone.fc_norm.weight'])
    assert written['backbone.pos_embed'].shape == (1, 8 * 8 * 8, 96)
    export_cli().main([tuned_path, str(tmp_path / 'cli.pth'), '--num-frames', '16',
                       '--img-size', '64', '--drop-classifier'])
    printed = capsys.readouterr().out
    assert ('kept from the fine-tuned checkpoint: fc_norm (fc_norm.bias, fc_norm.weight), '
            'trained\n') in printed
    assert ('dropped: cls_head.fc_cls.bias, cls_head.fc_cls.weight (the classifier, not kept)'
            in printed)


def test_reexport_that_would_lose_the_trained_norm_is_refused(finetuned, tmp_path):
    tuned_path, _ = finetuned
    with pytest.raises(SystemExit, match=r'fine-tuned with mean pooling .*fc_norm.bias, '
                                         r'fc_norm.weight.*leave out --no-mean-pooling'):
        export_cli().main([tuned_path, str(tmp_path / 'x.pth'), '--num-frames', '8',
                           '--img-size', '64', '--no-mean-pooling'])
    with pytest.raises(CheckpointMismatch, match='fc_norm_from_norm .* would replace it'):
        export_checkpoint(tuned_path, str(tmp_path / 'y.pth'), num_frames=8, img_size=64,
                          fc_norm_from_norm=True)
    assert not glob.glob(str(tmp_path / '*'))


def test_pretraining_export_names_everything_it_leaves(pretrain_ckpt, tmp_path, capsys):
    export_cli().main([pretrain_ckpt, str(tmp_path / 'e.pth'), '--num-frames', '8',
                       '--img-size', '64'])
    printed = capsys.readouterr().out
    assert 'kept from the fine-tuned checkpoint: nothing (not a fine-tuned one)' in printed
    assert 'newly initialised: fc_norm.bias, fc_norm.weight' in printed
    dropped = next(line for line in printed.splitlines() if line.startswith('dropped: '))
    assert dropped.startswith('dropped: norm.bias, norm.weight (the pre-training final norm); ')
    assert 'aligner.* (' in dropped and 'decoder.* (' in dropped
    raw = state_of(pretrain_ckpt)
    info = export_checkpoint(pretrain_ckpt, str(tmp_path / 'f.pth'), num_frames=8, img_size=64)
    # every tensor of the source is carried, dropped or named as left behind
    assert set(info['left_behind']) == {k for k in raw if not k.startswith('student.')}
    assert info['dropped'] == ['norm.weight', 'norm.bias'] and info['unexpected'] == []
    # that export exported again: its fc_norm was fresh, and is fresh again
    export_cli().main([str(tmp_path / 'f.pth'), str(tmp_path / 'g.pth'), '--num-frames', '16',
                       '--img-size', '64'])
    printed = capsys.readouterr().out
    assert 'num_heads: meta.backbone.num_heads, written by the export' in printed
    assert 'newly initialised: fc_norm.bias, fc_norm.weight\ndropped: nothing' in printed


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_amdpretrained_keeps_a_finetuned_fc_norm(finetuned):
    tuned_path, _ = finetuned
    tuned = state_of(tuned_path)
    cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', 'finetune_tiny_motion.py'))
    cfg.model.backbone.init_cfg.checkpoint = tuned_path
    model = MODELS.build(cfg.model)
    logger, seen = MMLogger.get_current_instance(), Lines()
    logger.addHandler(seen)
    try:
        model.init_weights()
    finally:
        logger.removeHandler(seen)
    own = model.backbone.state_dict()
    assert torch.equal(own['fc_norm.weight'], tuned['backbone.fc_norm.weight'])
    assert torch.equal(own['blocks.1.attn.qkv.weight'], tuned['backbone.blocks.1.attn.qkv.weight'])
    line = next(m for m in seen.lines if m.startswith('AMDPretrained: '))
    assert ('kept from the fine-tuned checkpoint: fc_norm (fc_norm.bias, fc_norm.weight), '
            'trained; ') in line and 'newly initialised: nothing' in line
    assert line.endswith('dropped: cls_head.fc_cls.bias, cls_head.fc_cls.weight (the classifier, '
                         'not kept)')


# -- heads of a fine-tuning config -----------------------------------------------------
def train_main():
    spec = importlib.util.spec_from_file_location(
        'train_cli_doors', osp.join(ROOT, 'tools', 'train.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


@pytest.mark.parametrize('heads', [4, 5, 2])
def test_finetune_heads_that_do_not_fit_the_export_are_refused(finetuned, motion_data,
                                                               tmp_path, heads, capsys):
    _, exported = finetuned  # exported with 3 heads (meta.backbone.num_heads)
    work = str(tmp_path / 'work')
    config = str(tmp_path / 'ft.py')
    finetune_config(motion_data, work, load_from=exported,
                    **{'model.backbone.num_heads': heads}).dump(config)
    cli = train_main()
    with pytest.raises(SystemExit) as stop:
        run_main(cli.main, [config, '--work-dir', work], prog='train.py')
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert (f'train.py: error: load_from={exported}: model.backbone.num_heads={heads} but the '
            "checkpoint's backbone was trained with 3 heads (meta.backbone.num_heads, written by "
            'the export)') in err
    assert 'Fix: --cfg-options model.backbone.num_heads=3' in err
    assert ('does not even divide the width 96' in err) == (heads == 5)
    assert not osp.exists(work)


def test_finetune_heads_checked_at_the_amdpretrained_door(pretrain_ckpt):
    cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', 'finetune_tiny_motion.py'))
    cfg.model.backbone.init_cfg.checkpoint = pretrain_ckpt
    for heads in (2, 4, 5):
        cfg.model.backbone.num_heads = heads
        with pytest.raises(CheckpointMismatch,
                           match=rf'model.backbone.num_heads={heads} but .* trained with 3 '
                                 r'heads \(meta.cfg model.student.num_heads\).*num_heads=3'):
            MODELS.build(cfg.model).init_weights()
    cfg.model.backbone.num_heads = 3
    MODELS.build(cfg.model).init_weights()


def test_heads_without_a_record_are_checked_against_the_width(pretrain_ckpt, tmp_path):
    from amd_mmaction.engine.preflight import RunRefused, check_load_from
    bare = str(tmp_path / 'bare.pth')
    exported = str(tmp_path / 'exported.pth')
    export_checkpoint(pretrain_ckpt, exported, num_frames=8, img_size=64)
    torch.save({'state_dict': state_of(exported)}, bare)  # no meta: nothing records heads
    cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', 'finetune_tiny_motion.py'))
    cfg.load_from = bare
    cfg.model.backbone.num_heads = 5
    with pytest.raises(RunRefused, match=r"num_heads=5 does not divide the checkpoint's width "
                                         r'embed_dims=96 .*H one of \[1, 2, 3, 4, 6\]'):
        check_load_from(cfg)
    cfg.model.backbone.num_heads = 4  # fits the width; nothing says it is wrong
    check_load_from(cfg)


# -- the teacher a run was started with -------------------------------------------------
TEACHER_96 = {'model.teacher.encoder.embed_dims': 96, 'model.teacher.encoder.depth': 4,
              'model.teacher.encoder.num_heads': 3, 'model.teacher.taps': (2, 4),
              'model.alignment.teacher_taps': (2, 4)}


@pytest.fixture(scope='module')
def amd_run(finetuned, motion_data, tmp_path_factory):
    """A 1-epoch AMD run through tools/train.py whose teacher is the
    fine-tuned classifier checkpoint: (config, work dir, its output)."""
    tmp = tmp_path_factory.mktemp('amd_teacher')
    four = str(tmp / 'train4.txt')  # one batch per epoch
    with open(motion_data['train']) as f, open(four, 'w') as g:
        g.writelines(f.readlines()[:4])
    config = str(tmp / 'amd.py')
    tiny_config('amd_tiny_motion.py', motion_data, tmp / 'unused',
                **dict(TEACHER_96, **{'train_dataloader.dataset.ann_file': four,
                                      'model.teacher.checkpoint': finetuned[0],
                                      'train_cfg.max_epochs': 1})).dump(config)
    work = str(tmp / 'run')
    rc, out = run(osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work)
    assert rc == 0, out[-3000:]
    return config, work, out


def test_classifier_teacher_is_named_in_the_log_and_recorded(amd_run, finetuned):
    config, work, out = amd_run
    line = (f'teacher checkpoint {finetuned[0]} is a fine-tuned classifier checkpoint (it holds '
            'cls_head.fc_cls.bias, cls_head.fc_cls.weight)')
    assert line in out
    logs = glob.glob(osp.join(work, '*', '*.log'))
    assert logs and line in open(logs[0]).read()
    meta = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=False)['meta']
    record = meta[TEACHER_KEY]
    assert record['path'] == osp.abspath(finetuned[0]) and record['kind'] == 'classifier'
    assert record['size'] == osp.getsize(finetuned[0])
    # the fingerprint of the weights loaded: the same teacher built again gives it
    teacher = MODELS.build(Config.fromfile(config).model.teacher)
    assert teacher.identity == record
    assert record['fingerprint'].startswith('sha256:') and len(record['fingerprint']) == 71
    assert meta[SHAPE_KEY] == {
        'student': dict(embed_dims=96, depth=4, num_heads=3),
        'teacher': dict(embed_dims=96, depth=4, num_heads=3, taps=[2, 4])}


def test_resume_with_another_teacher_is_refused_then_allowed(amd_run, pretrain_ckpt, tmp_path):
    import shutil
    config, work, _ = amd_run
    work = str(shutil.copytree(work, tmp_path / 'run'))
    before = snapshot(work)
    recorded = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=False)['meta'][TEACHER_KEY]
    train = osp.join(ROOT, 'tools', 'train.py')
    common = (config, '--work-dir', work, '--resume', '--cfg-options', 'train_cfg.max_epochs=2',
              f'model.teacher.checkpoint={pretrain_ckpt}')
    rc, out = run(train, *common)
    assert rc == 1, out[-3000:]
    other = next(line for line in out.splitlines() if line.startswith('train.py: error: '))
    assert (f'--resume: {work}/epoch_1.pth was trained with teacher {recorded["path"]} '
            f'(fingerprint {recorded["fingerprint"][:23]}, {recorded["size"]} bytes, a fine-tuned '
            'classifier checkpoint), but this config builds teacher ') in other
    assert f'{pretrain_ckpt} (fingerprint sha256:' in other
    assert 'add --cfg-options allow_teacher_change=True' in other
    assert 'Traceback' not in out and snapshot(work) == before

    rc, out = run(train, *common, 'allow_teacher_change=True')
    assert rc == 0, out[-3000:]
    assert 'allow_teacher_change=True: resuming' in out
    meta = torch.load(osp.join(work, 'epoch_2.pth'), weights_only=False)['meta']
    assert meta['epoch'] == 2 and meta[TEACHER_KEY]['path'] == osp.abspath(pretrain_ckpt)
    assert meta[TEACHER_KEY]['kind'] == 'encoder'
    assert meta[TEACHER_KEY]['fingerprint'] != recorded['fingerprint']


def test_runner_resume_checks_the_teacher_too(amd_run, pretrain_ckpt, tmp_path):
    """A Runner built directly (no tools/train.py pre-flight): the hook refuses."""
    import shutil
    from amd_mmaction.engine.preflight import RunRefused
    config, work, _ = amd_run
    work = str(shutil.copytree(work, tmp_path / 'run'))
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({'work_dir': work, 'resume': True,
                         'load_from': osp.join(work, 'epoch_1.pth'),
                         'train_cfg.max_epochs': 2, 'model.teacher.checkpoint': pretrain_ckpt,
                         'experiment_name': f'hook_{os.getpid()}'})
    with pytest.raises(RunRefused, match='was trained with teacher .*fine-tuned classifier'):
        Runner.from_cfg(cfg).train()
    assert not osp.exists(osp.join(work, 'epoch_2.pth'))


def test_fingerprint_is_of_the_weights_not_the_file(tmp_path):
    a = {'w': torch.arange(6.).reshape(2, 3), 'b': torch.zeros(2, dtype=torch.bfloat16)}
    assert state_fingerprint(a) == state_fingerprint({k: v.clone() for k, v in a.items()})
    assert state_fingerprint(a) != state_fingerprint(dict(a, w=a['w'] + 1e-3))
    assert state_fingerprint(a) != state_fingerprint(dict(a, w=a['w'].reshape(3, 2)))


def test_load_from_is_read_once(pretrain_ckpt, tmp_path, monkeypatch):
    """The pre-flight read of load_from is handed to the Runner's load: the
    file is unpickled once; a file changed in between is read again."""
    import amd_mmaction.weights.io as wio
    from amd_mmaction.engine.preflight import check_load_from
    exported = str(tmp_path / 'exported.pth')
    export_checkpoint(pretrain_ckpt, exported, num_frames=8, img_size=64)
    cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', 'finetune_tiny_motion.py'))
    cfg.load_from = exported
    reads = []
    real = wio.load_checkpoint_file
    monkeypatch.setattr(wio, 'load_checkpoint_file',
                        lambda path, **kw: reads.append(path) or real(path, **kw))
    check_load_from(cfg)
    assert len(reads) == 1
    from mmengine.runner.checkpoint import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint(exported, map_location='cpu')  # the Runner's door
    assert len(reads) == 1 and 'backbone.patch_embed.projection.weight' in ckpt['state_dict']
    CheckpointLoader.load_checkpoint(exported, map_location='cpu')  # used once, then dropped
    assert len(reads) == 2
    check_load_from(cfg)
    torch.save({'state_dict': {}}, exported)  # changed after the pre-flight read
    assert CheckpointLoader.load_checkpoint(exported, map_location='cpu') == {'state_dict': {}}
    assert len(reads) == 4
