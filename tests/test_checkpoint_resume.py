"""mmengine checkpoints on the pinned torch: save, ``load_from``,
``resume=True``; a real training process killed mid-epoch and mid-save
resumes from the last complete checkpoint at the right iteration and
learning rate; a truncated checkpoint gives a clear error.
"""
import errno
import glob
import json
import os
import os.path as osp
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ITERS_PER_EPOCH = 3  # 12 clips, batch 4
SMALL = {'model.student.depth': 1, 'model.decoder.depth': 1,
         'train_cfg.max_epochs': 3,
         'default_hooks.checkpoint.interval': 1,
         'default_hooks.checkpoint.max_keep_ckpts': 5}


def scalars(work_dir, run='*'):
    """{iter: lr} from the runs' (timestamp folders) vis_data/scalars.json."""
    lrs = {}
    for path in sorted(glob.glob(osp.join(work_dir, run, 'vis_data', 'scalars.json'))):
        for line in open(path):
            rec = json.loads(line)
            if 'lr' in rec:
                lrs[rec['step']] = rec['lr']
    return lrs


@pytest.fixture(scope='module')
def reference(motion_data, tmp_path_factory):
    """An uninterrupted 3-epoch run: its checkpoints and lr per iteration."""
    from conftest import tiny_config
    work = tmp_path_factory.mktemp('reference')
    cfg = tiny_config('videomae_student_tiny_motion.py', motion_data, work, **SMALL)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 3 * ITERS_PER_EPOCH
    return dict(work=str(work), lrs=scalars(str(work)),
                state={k: v.clone() for k, v in runner.model.state_dict().items()})


def test_checkpoint_contents(reference):
    ckpt = torch.load(osp.join(reference['work'], 'epoch_1.pth'), weights_only=False)
    assert ckpt['meta']['epoch'] == 1 and ckpt['meta']['iter'] == ITERS_PER_EPOCH
    assert {'state_dict', 'optimizer', 'param_schedulers', 'message_hub'} <= set(ckpt)
    assert not any(k.startswith('_teacher') for k in ckpt['state_dict'])
    umask = os.umask(0)
    os.umask(umask)  # atomic writes keep the usual file permissions
    assert os.stat(osp.join(reference['work'], 'epoch_1.pth')).st_mode & 0o777 == 0o666 & ~umask


def test_load_from_restores_weights_only(reference, tiny_cfg):
    ckpt = osp.join(reference['work'], 'epoch_3.pth')
    runner = Runner.from_cfg(tiny_cfg('videomae_student_tiny_motion.py', load_from=ckpt,
                                      resume=False, **SMALL))
    runner.load_or_resume()
    assert runner.iter == 0 and runner.epoch == 0  # weights only, a fresh schedule
    state = runner.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in reference['state'].items())


def test_resume_continues_iteration_and_lr(reference, tiny_cfg):
    ckpt = osp.join(reference['work'], 'epoch_1.pth')
    runner = Runner.from_cfg(tiny_cfg('videomae_student_tiny_motion.py', load_from=ckpt,
                                      resume=True, **SMALL))
    runner.train()
    assert runner.iter == 3 * ITERS_PER_EPOCH and runner.epoch == 3
    resumed = scalars(runner.work_dir)
    assert min(resumed) == ITERS_PER_EPOCH + 1  # the first iteration after the checkpoint
    assert sorted(resumed) == list(range(ITERS_PER_EPOCH + 1, 3 * ITERS_PER_EPOCH + 1))
    for it, lr in resumed.items():
        assert lr == pytest.approx(reference['lrs'][it], rel=1e-9), it


def test_resume_from_truncated_checkpoint(reference, tiny_cfg, tmp_path):
    good = open(osp.join(reference['work'], 'epoch_2.pth'), 'rb').read()
    cut = tmp_path / 'epoch_2.pth'
    cut.write_bytes(good[:len(good) // 3])
    runner = Runner.from_cfg(tiny_cfg('videomae_student_tiny_motion.py', load_from=str(cut),
                                      resume=True, **SMALL))
    with pytest.raises(RuntimeError, match=f"checkpoint '{cut}' cannot be read .*truncated"):
        runner.load_or_resume()


# -- a real training process, killed and resumed ------------------------------------
# Run in the training process before tools/train.py. AMD_TEST_PAUSE=
# "op:name:marker" makes os.<op> (replace: the rename that completes an
# atomic write; remove) block forever on a file called <name> after touching
# <marker>, so the test can SIGKILL the process at exactly that step of a
# save. AMD_TEST_ENOSPC=<name> makes the fsync of <name>'s temporary file
# fail with ENOSPC (where no small file system can be mounted).
WRAPPER = """
import errno, os, runpy, signal, sys, time
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
if os.environ.get('AMD_TEST_PAUSE'):
    op, name, marker = os.environ['AMD_TEST_PAUSE'].split(':')
    real = getattr(os, op)
    def paused(path, *rest, **kw):
        target = rest[0] if op == 'replace' else path
        if os.path.basename(str(target)) == name:
            open(marker, 'w').close()
            while True:
                time.sleep(1)
        return real(path, *rest, **kw)
    setattr(os, op, paused)
if os.environ.get('AMD_TEST_ENOSPC'):
    real_fsync = os.fsync
    def fsync(fd):
        if '.' + os.environ['AMD_TEST_ENOSPC'] + '.' in os.readlink(f'/proc/self/fd/{fd}'):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)
    os.fsync = fsync
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def _train(config, work, *extra, fsize_limit=None, env=None):
    """Start tools/train.py; with ``fsize_limit`` the kernel kills it
    (SIGXFSZ, default action, like SIGKILL: no Python cleanup) as soon as a
    write goes past that many bytes: a checkpoint save is cut mid-write."""
    cmd = [sys.executable, '-c', WRAPPER,
           osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work, *extra]

    def limits():
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if fsize_limit:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', **(env or {}))
    return subprocess.Popen(cmd, cwd=ROOT, env=env, preexec_fn=limits,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _last_checkpoint(work):
    with open(osp.join(work, 'last_checkpoint')) as f:
        return f.read().strip()


def test_sigkill_mid_epoch_and_mid_save_then_resume(reference, tiny_cfg, tmp_path):
    # keep 1: mmengine's own CheckpointHook would delete epoch_1.pth before the cut save
    cfg = tiny_cfg('videomae_student_tiny_motion.py',
                   **dict(SMALL, **{'default_hooks.checkpoint.max_keep_ckpts': 1}))
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)
    work = str(tmp_path / 'killed')

    # 1. SIGKILL in the middle of epoch 2, after epoch_1.pth is complete.
    proc = _train(config, work)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if max(scalars(work), default=0) >= ITERS_PER_EPOCH + 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _last_checkpoint(work) == 'epoch_1.pth'  # relative to the work dir
    assert not osp.exists(osp.join(work, 'epoch_2.pth'))

    # 2. Resume, and be killed by the kernel while writing epoch_2.pth.
    size = osp.getsize(osp.join(work, 'epoch_1.pth'))
    proc = _train(config, work, '--resume', fsize_limit=size // 2)
    out = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == -signal.SIGXFSZ, out[-3000:]
    partial = glob.glob(osp.join(work, '.epoch_2.pth.*.tmp'))
    assert partial and osp.getsize(partial[0]) <= size // 2  # the cut-off write
    assert not osp.exists(osp.join(work, 'epoch_2.pth'))
    assert _last_checkpoint(work) == 'epoch_1.pth'  # relative to the work dir

    # 3. Resume again: from epoch_1.pth (the last complete one) to the end.
    before = set(glob.glob(osp.join(work, '2*')))
    proc = _train(config, work, '--resume')
    out = proc.communicate(timeout=180)[0].decode()
    assert proc.returncode == 0, out[-3000:]
    assert f"Load checkpoint from {osp.join(work, 'epoch_1.pth')}" in out
    assert 'resumed epoch: 1, iter: 3' in out
    (run3,) = set(glob.glob(osp.join(work, '2*'))) - before
    lrs = scalars(work, osp.basename(run3))
    assert sorted(lrs) == list(range(ITERS_PER_EPOCH + 1, 3 * ITERS_PER_EPOCH + 1))
    for it, lr in lrs.items():
        assert lr == pytest.approx(reference['lrs'][it], rel=1e-9), it
    assert not glob.glob(osp.join(work, '.*.tmp'))  # the leftover went with the good save
    assert sorted(glob.glob(osp.join(work, '*.pth'))) == [osp.join(work, 'epoch_3.pth')]
    final = torch.load(osp.join(work, 'epoch_3.pth'), weights_only=False)
    assert final['meta']['iter'] == 3 * ITERS_PER_EPOCH and final['meta']['epoch'] == 3


def _killed_at(config, work, pause, *extra):
    """Run tools/train.py until it blocks at ``pause`` ("op:name"), then
    SIGKILL it."""
    marker = osp.join(osp.dirname(work), 'paused')
    if osp.exists(marker):
        os.remove(marker)
    proc = _train(config, work, *extra, env={'AMD_TEST_PAUSE': f'{pause}:{marker}'})
    deadline = time.time() + 150
    while not osp.exists(marker) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert osp.exists(marker) and proc.poll() is None, proc.stdout.read().decode()[-3000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _loads(path):
    return torch.load(path, weights_only=False)['meta']['epoch']


def test_sigkill_at_every_step_of_a_save_keep_one(reference, tiny_cfg, tmp_path):
    """max_keep_ckpts=1, SIGKILL at each step of saving epoch_2.pth: its file
    written but not renamed, renamed but last_checkpoint not yet updated,
    last_checkpoint updated but epoch_1.pth not yet deleted. After each kill
    last_checkpoint names a complete checkpoint and --resume goes on."""
    cfg = tiny_cfg('videomae_student_tiny_motion.py',
                   **dict(SMALL, **{'default_hooks.checkpoint.max_keep_ckpts': 1}))
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)
    work = str(tmp_path / 'killed')
    ckpt = osp.join(work, 'epoch_{}.pth').format

    _killed_at(config, work, 'replace:epoch_2.pth')
    assert _last_checkpoint(work) == 'epoch_1.pth' and _loads(ckpt(1)) == 1
    assert glob.glob(osp.join(work, '.epoch_2.pth.*.tmp')) and not osp.exists(ckpt(2))

    _killed_at(config, work, 'replace:last_checkpoint', '--resume')
    assert _last_checkpoint(work) == 'epoch_1.pth' and _loads(ckpt(1)) == 1
    assert _loads(ckpt(2)) == 2  # complete, not yet named

    _killed_at(config, work, 'remove:epoch_1.pth', '--resume')
    assert _last_checkpoint(work) == 'epoch_2.pth' and _loads(ckpt(2)) == 2
    assert osp.exists(ckpt(1))

    before = set(glob.glob(osp.join(work, '2*')))
    proc = _train(config, work, '--resume')
    out = proc.communicate(timeout=180)[0].decode()
    assert proc.returncode == 0, out[-3000:]
    assert f'Load checkpoint from {ckpt(2)}' in out and 'resumed epoch: 2, iter: 6' in out
    (run,) = set(glob.glob(osp.join(work, '2*'))) - before
    lrs = scalars(work, osp.basename(run))
    assert sorted(lrs) == [7, 8, 9]
    assert all(lrs[i] == pytest.approx(reference['lrs'][i], rel=1e-9) for i in lrs)
    assert sorted(glob.glob(osp.join(work, '*.pth'))) == [ckpt(3)]
    assert _last_checkpoint(work) == 'epoch_3.pth'
    assert not glob.glob(osp.join(work, '.*.tmp'))


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 5 MiB (a checkpoint of the SMALL model is about 2.8 MB:
    one fits, a second beside it does not); None where mounting is not
    allowed (not root, no CAP_SYS_ADMIN)."""
    mnt = tmp_path / 'disk'
    mnt.mkdir()
    ok = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=5m', 'tmpfs', str(mnt)],
                        capture_output=True).returncode == 0
    yield str(mnt) if ok else None
    if ok:
        subprocess.run(['umount', '-l', str(mnt)], check=False)


def test_disk_full_while_saving_keeps_the_previous_checkpoint(reference, tiny_cfg,
                                                              tmp_path, small_disk):
    """ENOSPC while epoch_2.pth is written (a real full tmpfs; without mount
    rights, an fsync that fails with ENOSPC): a clear error naming the file,
    epoch_1.pth and last_checkpoint untouched, no temporary file left; the
    work dir, copied to a disk with room, resumes to the end."""
    size = osp.getsize(osp.join(reference['work'], 'epoch_1.pth'))
    assert 2 * 1024 ** 2 < size < 5 * 1024 ** 2 / 1.6, size  # the tmpfs size above fits
    cfg = tiny_cfg('videomae_student_tiny_motion.py',
                   **dict(SMALL, **{'default_hooks.checkpoint.max_keep_ckpts': 1}))
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)
    work = osp.join(small_disk or str(tmp_path), 'full')
    env = None if small_disk else {'AMD_TEST_ENOSPC': 'epoch_2.pth'}
    proc = _train(config, work, env=env)
    out = proc.communicate(timeout=180)[0].decode()
    assert proc.returncode == 1, out[-3000:]
    assert (f'CheckpointSaveError: [Errno 28] could not write checkpoint '
            f'{osp.join(work, "epoch_2.pth")}: No space left on device') in out
    assert f'the last complete checkpoint is still {osp.join(work, "epoch_1.pth")}' in out
    assert _last_checkpoint(work) == 'epoch_1.pth'
    assert _loads(osp.join(work, 'epoch_1.pth')) == 1
    assert not glob.glob(osp.join(work, '.*.tmp')) and not osp.exists(osp.join(work, 'epoch_2.pth'))

    roomy = str(tmp_path / 'roomy')
    shutil.copytree(work, roomy)
    proc = _train(config, roomy, '--resume')
    out = proc.communicate(timeout=180)[0].decode()
    assert proc.returncode == 0, out[-3000:]
    assert f"Load checkpoint from {osp.join(roomy, 'epoch_1.pth')}" in out
    assert sorted(glob.glob(osp.join(roomy, '*.pth'))) == [osp.join(roomy, 'epoch_3.pth')]


def test_resume_mid_epoch_skips_trained_batches(motion_data, tmp_path):
    """From an iteration checkpoint inside epoch 2, ResumableEpochBasedTrainLoop
    trains only the rest of that epoch: same end iteration and lr as an
    uninterrupted run (mmengine's loop would replay the whole epoch)."""
    from conftest import tiny_config
    opts = dict(SMALL, **{'train_cfg.max_epochs': 2,
                          'train_cfg.type': 'ResumableEpochBasedTrainLoop',
                          'default_hooks.checkpoint.by_epoch': False,
                          'default_hooks.checkpoint.interval': 2})
    full = Runner.from_cfg(tiny_config('videomae_student_tiny_motion.py', motion_data,
                                       tmp_path / 'full', **opts))
    full.train()
    ckpt = str(tmp_path / 'full' / 'iter_4.pth')  # 1 of epoch 2's 3 batches done
    resumed = Runner.from_cfg(tiny_config('videomae_student_tiny_motion.py', motion_data,
                                          tmp_path / 'resumed', load_from=ckpt, resume=True,
                                          **opts))
    resumed.train()
    assert (resumed.iter, resumed.epoch) == (full.iter, full.epoch) == (6, 2)
    lrs, ref = scalars(str(tmp_path / 'resumed')), scalars(str(tmp_path / 'full'))
    assert sorted(lrs) == [5, 6]
    assert all(lrs[i] == pytest.approx(ref[i], rel=1e-9) for i in lrs)
    log = open(osp.join(resumed.log_dir, f'{resumed.timestamp}.log')).read()
    assert 'resumed in the middle of epoch 2: skipping its first 1 batches' in log


def test_save_best_writes_the_new_best_before_deleting_the_old(tiny_cfg, monkeypatch):
    """mmengine deletes the previous best checkpoint before writing the new
    one. SafeCheckpointHook writes first: when the old one is deleted the new
    one is complete on disk, and a failed write (ENOSPC) keeps the old one,
    its score and a clear error."""
    from amd_mmaction.engine import CheckpointSaveError, SafeCheckpointHook
    runner = Runner.from_cfg(tiny_cfg('videomae_student_tiny_motion.py', **dict(
        SMALL, **{'default_hooks.checkpoint.save_best': 'acc/top1',
                  'default_hooks.checkpoint.rule': 'greater'})))
    (hook,) = [h for h in runner.hooks if isinstance(h, SafeCheckpointHook)]
    hook.before_train(runner)
    work = runner.work_dir
    best = osp.join(work, 'best_acc_top1_epoch_{}.pth').format
    removed = []
    real_remove = os.remove

    def remove(path, *a, **kw):
        on_disk = sorted(map(osp.basename, glob.glob(osp.join(work, 'best_*.pth'))))
        removed.append((osp.basename(path), on_disk))
        return real_remove(path, *a, **kw)
    monkeypatch.setattr(os, 'remove', remove)

    runner.train_loop._epoch = 1
    hook._save_best_checkpoint(runner, {'acc/top1': 40.0})
    assert _loads(best(1)) == 1 and not removed
    runner.train_loop._epoch = 2
    hook._save_best_checkpoint(runner, {'acc/top1': 30.0})  # not better: nothing changes
    assert not osp.exists(best(2)) and runner.message_hub.get_info('best_score') == 40.0
    runner.train_loop._epoch = 3
    hook._save_best_checkpoint(runner, {'acc/top1': 50.0})
    # when epoch 1's best was deleted, epoch 3's was already there
    assert removed == [('best_acc_top1_epoch_1.pth',
                        ['best_acc_top1_epoch_1.pth', 'best_acc_top1_epoch_3.pth'])]
    assert sorted(glob.glob(osp.join(work, 'best_*.pth'))) == [best(3)]
    saved = torch.load(best(3), weights_only=False)['message_hub']['runtime_info']
    assert saved['best_score'] == 50.0 and saved['best_ckpt'] == best(3)

    real_fsync = os.fsync

    def full(fd):
        if '.best_acc_top1_epoch_4.pth.' in os.readlink(f'/proc/self/fd/{fd}'):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)
    monkeypatch.setattr(os, 'fsync', full)
    runner.train_loop._epoch = 4
    with pytest.raises(CheckpointSaveError, match=(
            f'could not write best checkpoint {best(4)}: No space left on device; nothing of it '
            f'was kept, the previous best is still {best(3)}')):
        hook._save_best_checkpoint(runner, {'acc/top1': 60.0})
    assert sorted(glob.glob(osp.join(work, 'best_*.pth'))) == [best(3)]
    assert not glob.glob(osp.join(work, '.*.tmp'))
    assert runner.message_hub.get_info('best_score') == 50.0 and hook.best_ckpt_path == best(3)
