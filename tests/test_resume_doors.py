"""What ``--resume`` and ``load_from`` refuse or say, through real
tools/train.py processes on configs/tiny, and the head checks of
tools/export_checkpoint.py. A refused run must leave the work dir as it
was."""
import argparse
import os
import os.path as osp
import shlex
import shutil
import subprocess
import sys

import pytest
import torch

from amd_mmaction.student import VideoViT
from amd_mmaction.weights import CheckpointMismatch, export_checkpoint

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SMALL = {'model.student.depth': 1, 'model.decoder.depth': 1, 'train_cfg.max_epochs': 1,
         'default_hooks.checkpoint.interval': 1, 'default_hooks.checkpoint.max_keep_ckpts': 1}


def run(*args, timeout=240):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc.returncode, proc.stdout.decode()


def train(config, work, *extra):
    return run(osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work, *extra)


def snapshot(folder):
    """Every file under ``folder`` with its size and mtime."""
    paths = [osp.join(dp, f) for dp, _, fs in os.walk(folder) for f in fs]
    return {p: (os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths}


@pytest.fixture(scope='module')
def trained(motion_data, tmp_path_factory):
    """A finished 1-epoch tiny VideoMAE student run: (config, work dir)."""
    from conftest import tiny_config
    tmp = tmp_path_factory.mktemp('doors')
    config = str(tmp / 'tiny.py')
    tiny_config('videomae_student_tiny_motion.py', motion_data, tmp / 'unused',
                **SMALL).dump(config)
    work = str(tmp / 'run')
    rc, out = train(config, work)
    assert rc == 0, out[-3000:]
    assert open(osp.join(work, 'last_checkpoint')).read() == 'epoch_1.pth'
    return config, work


def copy_of(trained, dst, pointer=None):
    shutil.copytree(trained[1], dst)
    if pointer is not None:  # as mmengine's own CheckpointHook writes it: absolute
        with open(osp.join(dst, 'last_checkpoint'), 'w') as f:
            f.write(pointer)
    return str(dst)


def test_resume_with_nothing_to_resume_refuses(trained, tmp_path):
    empty = str(tmp_path / 'empty')
    rc, out = train(trained[0], empty, '--resume')
    assert rc == 1, out[-3000:]
    assert f'--resume: nothing to resume in {empty} (no last_checkpoint there)' in out
    assert '--allow-fresh' in out and not osp.exists(empty)

    rc, out = train(trained[0], empty, '--resume', '--allow-fresh')
    assert rc == 0, out[-3000:]
    assert f'no checkpoint in {empty}, starting from scratch' in out
    assert osp.isfile(osp.join(empty, 'epoch_1.pth'))


def test_resume_of_a_finished_run_says_so(trained, tmp_path):
    work = copy_of(trained, tmp_path / 'done')
    before = snapshot(work)
    rc, out = train(trained[0], work, '--resume')
    assert rc == 0, out[-3000:]
    assert (f'--resume: nothing to do, the run is finished: {work}/epoch_1.pth is at epoch 1 '
            'and train_cfg.max_epochs=1') in out
    assert snapshot(work) == before


def test_moved_work_dir_with_an_old_absolute_pointer(trained, tmp_path):
    """last_checkpoint written by mmengine's hook holds an absolute path
    that no longer exists after a move: read by its base name here."""
    work = copy_of(trained, tmp_path / 'moved', pointer='/gone/old_place/epoch_1.pth')
    rc, out = train(trained[0], work, '--resume')
    assert rc == 0, out[-3000:]
    assert f'{work}/epoch_1.pth is at epoch 1' in out
    os.remove(osp.join(work, 'epoch_1.pth'))
    rc, out = train(trained[0], work, '--resume')
    assert rc == 1, out[-3000:]
    assert "names '/gone/old_place/epoch_1.pth', which does not exist" in out


def test_copied_work_dir_resumes_its_own_checkpoint(trained, tmp_path):
    """The pointer names the ORIGINAL folder's file, which still exists: the
    copy resumes from its own file and leaves the original alone."""
    original = snapshot(trained[1])
    work = copy_of(trained, tmp_path / 'copy', pointer=osp.join(trained[1], 'epoch_1.pth'))
    rc, out = train(trained[0], work, '--resume', '--cfg-options', 'train_cfg.max_epochs=2')
    assert rc == 0, out[-3000:]
    assert f'Load checkpoint from {work}/epoch_1.pth' in out
    assert open(osp.join(work, 'last_checkpoint')).read() == 'epoch_2.pth'
    assert sorted(f for f in os.listdir(work) if f.endswith('.pth')) == ['epoch_2.pth']
    assert snapshot(trained[1]) == original


def test_resume_with_another_width_refuses_before_writing(trained, tmp_path):
    work = copy_of(trained, tmp_path / 'wider')
    before = snapshot(work)
    rc, out = train(trained[0], work, '--resume', '--cfg-options',
                    'model.student.embed_dims=192', 'train_cfg.max_epochs=2')
    assert rc == 1, out[-3000:]
    assert f'--resume: {work}/epoch_1.pth does not fit the model of this config' in out
    assert '18 shapes differ: decoder.encoder_to_decoder.weight: checkpoint (64, 96) vs ' \
        'model (64, 192); ' in out
    assert ('student.patch_embed.proj.weight: checkpoint (96, 3, 2, 8, 8) vs model '
            '(192, 3, 2, 8, 8)') in out
    assert 'size mismatch' not in out  # refused before mmengine's per-key warnings
    assert snapshot(work) == before  # config copy, logs: nothing written


def test_load_from_a_pretraining_checkpoint_in_finetuning_refuses(trained, tmp_path):
    """The message's export command is run as printed and works."""
    ckpt = osp.join(trained[1], 'epoch_1.pth')
    work = str(tmp_path / 'ft')
    rc, out = train(osp.join(ROOT, 'configs', 'tiny', 'finetune_tiny_motion.py'), work,
                    '--cfg-options', f'load_from={ckpt}')
    assert rc == 1, out[-3000:]
    assert f'load_from={ckpt} is a pre-training checkpoint (decoder.*, student.*' in out
    exported = osp.join(trained[1], 'epoch_1_mmaction.pth')
    cmd = (f'python tools/export_checkpoint.py {ckpt} {exported} --num-frames 8 '
           '--img-size 64 --num-heads 3')
    assert cmd in out and not osp.exists(work)
    rc, out = run(*shlex.split(cmd)[1:])
    assert rc == 0, out[-3000:]
    assert all(k.startswith('backbone.') for k in
               torch.load(exported, weights_only=False)['state_dict'])


# -- export: the head count ----------------------------------------------------------
TINY = dict(img_size=64, patch_size=8, num_frames=8, tubelet_size=2, depth=1)


def test_export_heads_checked_against_our_checkpoint_config(trained, tmp_path):
    ckpt = osp.join(trained[1], 'epoch_1.pth')  # meta.cfg: model.student.num_heads=3
    rc, out = run(osp.join(ROOT, 'tools', 'export_checkpoint.py'), ckpt,
                  str(tmp_path / 'o.pth'), '--num-frames', '8', '--img-size', '64',
                  '--num-heads', '4')
    assert rc == 1, out[-3000:]
    assert (f'export failed: {ckpt}: --num-heads 4 but the checkpoint was trained with 3 '
            'heads (meta.cfg model.student.num_heads)') in out
    assert not osp.exists(tmp_path / 'o.pth')
    info = export_checkpoint(ckpt, str(tmp_path / 'o.pth'), num_frames=8, img_size=64)
    assert info['backbone']['num_heads'] == 3
    assert info['num_heads_from'] == 'meta.cfg model.student.num_heads'


def test_export_heads_from_official_args_and_width(tmp_path):
    enc = {f'encoder.{k}': v for k, v in VideoViT(**TINY, embed_dims=384, num_heads=6)
           .state_dict().items()}
    official = str(tmp_path / 'official.pth')
    torch.save({'model': enc, 'args': argparse.Namespace(
        model='pretrain_videomae_small_patch16_224', batch_size=16)}, official)
    with pytest.raises(CheckpointMismatch, match=r"--num-heads 12 but the checkpoint was trained "
                       r"with 6 heads \(args.model='pretrain_videomae_small_patch16_224'\)"):
        export_checkpoint(official, str(tmp_path / 'o.pth'), num_frames=8, img_size=64,
                          num_heads=12)
    assert export_checkpoint(official, str(tmp_path / 'o.pth'), num_frames=8,
                             img_size=64)['backbone']['num_heads'] == 6

    bare = str(tmp_path / 'bare.pth')  # no records: only the width can be checked
    torch.save({f'encoder.{k}': v for k, v in
                VideoViT(**TINY, embed_dims=96, num_heads=3).state_dict().items()}, bare)
    with pytest.raises(CheckpointMismatch, match='num_heads=5 .given. does not divide the '
                       'width embed_dims=96'):
        export_checkpoint(bare, str(tmp_path / 'o.pth'), num_frames=8, img_size=64, num_heads=5)
    with pytest.raises(CheckpointMismatch, match='num_heads=12 .given. gives a head dim of 8 '
                       'for embed_dims=96; expected 16..256'):
        export_checkpoint(bare, str(tmp_path / 'o.pth'), num_frames=8, img_size=64, num_heads=12)
    kept = torch.load(str(tmp_path / 'o.pth'), weights_only=False)['meta']
    assert kept['source'] == official  # the refused exports wrote nothing
    info = export_checkpoint(bare, str(tmp_path / 'o2.pth'), num_frames=8, img_size=64)
    assert info['backbone']['num_heads'] == 2 and info['num_heads_from'].startswith('guessed')


def test_last_checkpoint_resolves_in_its_work_dir(tmp_path):
    """The rules the Runner's resume=True uses too (mmengine's
    find_latest_checkpoint is replaced by this resolver)."""
    import mmengine.runner.runner as runner_mod
    from amd_mmaction.engine.hooks.checkpoint import resolve_last_checkpoint
    here, there = tmp_path / 'here', tmp_path / 'there'
    for d in (here, there):
        d.mkdir()
        (d / 'epoch_2.pth').write_bytes(b'x')
    pointer = here / 'last_checkpoint'
    assert resolve_last_checkpoint(str(here)) is None
    assert runner_mod.find_latest_checkpoint(str(here)) is None
    for name in ('epoch_2.pth', str(there / 'epoch_2.pth'), '/gone/epoch_2.pth'):
        pointer.write_text(name)  # relative; absolute to a copy's original; absolute, moved
        assert resolve_last_checkpoint(str(here)) == str(here / 'epoch_2.pth')
        assert runner_mod.find_latest_checkpoint(str(here)) == str(here / 'epoch_2.pth')
    pointer.write_text(str(there / 'epoch_2.pth'))
    (here / 'epoch_2.pth').unlink()  # the out_dir-elsewhere case: the absolute file
    assert resolve_last_checkpoint(str(here)) == str(there / 'epoch_2.pth')
    pointer.write_text('epoch_2.pth')
    with pytest.raises(FileNotFoundError, match="names 'epoch_2.pth', which does not exist"):
        resolve_last_checkpoint(str(here))
    pointer.write_text('')
    with pytest.raises(FileNotFoundError, match='last_checkpoint is empty'):
        resolve_last_checkpoint(str(here))
