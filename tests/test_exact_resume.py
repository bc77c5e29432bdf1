"""Exact resume (docs/reliability.md, "Exact resume").

The chaos test (``test_chaos_*``, marked ``chaos``; slow by design, never
skipped): a tiny VideoMAE student trained by real ``tools/train.py``
processes is SIGKILLed at seeded random moments (during a step, during a
checkpoint save, during start-up) and resumed with ``--resume`` each time
until it finishes; its final weights must equal those of an unbroken run
bit for bit (max |diff| = 0), without and with DataLoader workers.

The in-process tests resume one unbroken run from each kind of checkpoint
(mid-epoch with and without batches to re-make, epoch end, an iteration
checkpoint at an epoch's last batch) with batches prepared ahead in a
thread, and with persistent workers; and check what a checkpoint carries.
"""
import glob
import os
import os.path as osp
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from amd_mmaction.data.synthetic import make_motion_dataset

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = 'videomae_student_tiny_motion.py'
ITERS_PER_EPOCH = 4  # 8 clips, batch 2


def small(epochs, workers, persistent=False, prefetch=0):
    return {'model.student.depth': 1, 'model.student.embed_dims': 48,
            'model.student.num_heads': 2, 'model.decoder.depth': 1,
            'model.decoder.embed_dims': 32,
            'train_cfg.max_epochs': epochs, 'train_cfg.prefetch': prefetch,
            'train_dataloader.batch_size': 2,
            'train_dataloader.num_workers': workers,
            'train_dataloader.persistent_workers': persistent,
            'default_hooks.checkpoint.interval': 1,
            'default_hooks.checkpoint.max_keep_ckpts': -1}


def with_iter_checkpoints(cfg, interval=3):
    """Epoch checkpoints (default hook) and iteration checkpoints every
    ``interval`` iterations (``iter_N.pth``): mid-epoch ones, and ones after
    an epoch's last batch."""
    cfg.custom_hooks = list(cfg.custom_hooks) + [dict(
        type='SafeCheckpointHook', by_epoch=False, interval=interval, max_keep_ckpts=-1)]
    return cfg


@pytest.fixture(autouse=True)
def one_thread():
    """In-process runs on one thread (as the training processes below):
    two threads on two busy cores spin more than they compute."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    """8 VP9 clips of 16 frames, 32x32 (upscaled to the config's 64)."""
    return make_motion_dataset(str(tmp_path_factory.mktemp('clips')), num_train=8, num_val=1,
                               num_frames=16, size=32, ext='webm', seed=0)


def weights(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


# -- in process: resume from each kind of checkpoint -------------------------
def _config(clips, work, opts, mask_seed=None, **extra):
    from conftest import tiny_config
    cfg = with_iter_checkpoints(tiny_config(CONFIG, clips, work, **dict(opts, **extra)))
    if mask_seed is not None:  # the mask draws from its own generator

        def seed(transforms):
            for t in transforms:
                if t['type'] == 'AsymmetricTubeMask':
                    t['seed'] = mask_seed
                seed(t.get('transforms', []))
        seed(cfg.train_dataloader.dataset.pipeline)
    return cfg


@pytest.mark.parametrize('workers,persistent,prefetch', [
    (0, False, 2),  # batches made ahead in a thread, in the main process
    (2, True, 0),   # the pre-training configs' persistent workers
], ids=['prefetch-thread', 'persistent-workers'])
def test_resume_from_each_kind_of_checkpoint(clips, tmp_path, workers, persistent, prefetch):
    opts = small(4, workers, persistent, prefetch)
    full = Runner.from_cfg(_config(clips, tmp_path / 'full', opts, mask_seed=7))
    full.train()
    assert full.iter == 4 * ITERS_PER_EPOCH
    ref = {k: v.clone() for k, v in full.model.state_dict().items()}
    del full
    logs = {}
    # iter_15: batch 3 of 4 in epoch 4 (with 2 workers: batch 2 re-made, not
    # trained); iter_9: batch 1 of epoch 3; iter_12: after epoch 3's last
    # batch; epoch_2: an epoch-end checkpoint
    # (persistent workers take about 10 s to shut down when a Runner goes: fewer there)
    for name in ('iter_15', 'iter_12', 'epoch_2') + (() if persistent else ('iter_9',)):
        work = tmp_path / name
        runner = Runner.from_cfg(_config(clips, work, opts, mask_seed=7, resume=True,
                                         load_from=str(tmp_path / 'full' / f'{name}.pth')))
        runner.train()
        assert runner.iter == 4 * ITERS_PER_EPOCH, name
        assert max_diff(runner.model.state_dict(), ref) == 0, name
        logs[name] = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
        del runner
    assert 'will not end with the weights' not in ''.join(logs.values())
    assert 'resumed at the end of epoch 3: all its 4 batches were trained' in logs['iter_12']
    if workers:
        assert ('skipping its first 3 batches (already trained before iteration 15); 1 of '
                'them are made again (not trained)') in logs['iter_15']
    else:
        assert 'skipping its first 3 batches (already trained before iteration 15)\n' \
            in logs['iter_15']


def test_checkpoint_carries_the_random_streams(clips, tmp_path):
    """``rng_state`` in a checkpoint: the main process's generators and one
    state per DataLoader worker, read back by the safe checkpoint loader."""
    from amd_mmaction.weights.io import load_checkpoint_file
    runner = Runner.from_cfg(_config(clips, tmp_path, small(1, 2)))
    runner.train()
    ckpt = load_checkpoint_file(str(tmp_path / 'iter_3.pth'), map_location='cpu')
    assert (ckpt['rng_state']['world_size'], len(ckpt['rng_state']['ranks'])) == (1, 1)
    state = ckpt['rng_state']['ranks'][0]
    assert set(state['main']) >= {'python', 'numpy', 'torch', 'transforms'}
    loader = state['loader']
    assert (loader['num_workers'], loader['persistent'], loader['epoch_len'], loader['done']) \
        == (2, False, ITERS_PER_EPOCH, 3)
    # after 3 batches, worker 0 (batches 0, 2) goes on with batch 4 -> its state
    # before batch 2; worker 1 (batch 1) goes on with batch 3 -> after batch 1
    assert sorted(loader['workers']) == [0, 1]
    assert all(isinstance(s['numpy'][1], np.ndarray) for s in loader['workers'].values())
    # an epoch-end checkpoint of re-created workers: they start from their seeds
    epoch_end = load_checkpoint_file(str(tmp_path / 'epoch_1.pth'))['rng_state']['ranks'][0]
    assert epoch_end['loader']['done'] == ITERS_PER_EPOCH and epoch_end['loader']['workers'] == {}


def test_load_from_restores_no_random_state(clips, tmp_path):
    """``load_from`` (weights only) starts fresh streams, as before: a run
    from a checkpoint equals a run from the same checkpoint without its
    ``rng_state``."""
    runner = Runner.from_cfg(_config(clips, tmp_path / 'a', small(1, 0)))
    runner.train()
    ckpt = torch.load(str(tmp_path / 'a' / 'epoch_1.pth'), weights_only=False)
    assert 'rng_state' in ckpt
    bare = str(tmp_path / 'bare.pth')
    torch.save({k: v for k, v in ckpt.items() if k != 'rng_state'}, bare)
    runs = []
    for name, path in (('b', str(tmp_path / 'a' / 'epoch_1.pth')), ('c', bare)):
        r = Runner.from_cfg(_config(clips, tmp_path / name, small(1, 0), load_from=path))
        r.train()
        runs.append({k: v.clone() for k, v in r.model.state_dict().items()})
    assert max_diff(*runs) == 0


def test_seeded_mask_state_round_trip():
    from amd_mmaction.masks import AsymmetricTubeMask
    mask = AsymmetricTubeMask(grid=(2, 4, 4), seed=3)
    state = mask.get_rng_state()
    first = mask.transform({})['mask_stu']
    mask.transform({})  # the generator moves on
    mask.set_rng_state(state)
    assert np.array_equal(mask.transform({})['mask_stu'], first)
    unseeded = AsymmetricTubeMask(grid=(2, 4, 4))
    assert unseeded.get_rng_state() is None
    with pytest.raises(ValueError, match='the mask seed in the config changed'):
        unseeded.set_rng_state(state)


# -- the chaos test: real processes, SIGKILLed at random moments --------------
# Runs tools/train.py. CHAOS_PAUSE="n:marker": the n-th os.replace that
# completes a checkpoint (*.pth) or last_checkpoint blocks forever after
# touching marker, so that the test kills the process in the middle of a
# save (n odd: the checkpoint is written but not renamed into place; n even:
# it is in place, last_checkpoint still names the previous one).
LAUNCHER = """
import os, runpy, sys, time
if os.environ.get('CHAOS_PAUSE'):
    n, marker = os.environ['CHAOS_PAUSE'].split(':', 1)
    n, real, seen = int(n), os.replace, [0]
    def replace(src, dst, *args, **kwargs):
        name = os.path.basename(str(dst))
        if name.endswith('.pth') or name == 'last_checkpoint':
            seen[0] += 1
            if seen[0] == n:
                open(marker, 'w').close()
                while True:
                    time.sleep(1)
        return real(src, dst, *args, **kwargs)
    os.replace = replace
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""
LAST = osp.join('{work}', 'epoch_{epochs}.pth')


class Training:
    """One tools/train.py process (its own process group: a kill takes its
    DataLoader workers too, as a job scheduler's would)."""

    def __init__(self, config, work, log, *extra, env=None):
        self.log = log
        self.out = open(log, 'wb')
        env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1',
                   PYTHONWARNINGS='ignore', **(env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, '-c', LAUNCHER, osp.join(ROOT, 'tools', 'train.py'), config,
             '--work-dir', work, *extra], cwd=ROOT, env=env, stdout=self.out,
            stderr=subprocess.STDOUT, start_new_session=True)

    def text(self):
        with open(self.log, errors='replace') as f:
            return f.read()

    def steps(self):
        return self.text().count('Epoch(train)')

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        """SIGKILL the process and its workers; True if it was still running."""
        alive = self.alive()
        if alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.out.close()
        return alive

    def finish(self, timeout=300):
        self.proc.wait(timeout=timeout)
        self.out.close()
        assert self.proc.returncode == 0, self.text()[-4000:]


def _wait(cond, proc, timeout=240):
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.alive() and not cond():
        time.sleep(0.02)
    return cond()


def chaos(config, work, logs, rng, epochs):
    """Train to the end through kills at random moments; returns what was
    done, one line per process."""
    plan = [('step', rng.randint(3, 6)), ('startup', rng.uniform(0.2, 4.0)),
            ('save', rng.randint(1, 4)), ('step', rng.randint(1, 4)),
            ('save', rng.randint(1, 3))]
    done, last = [], LAST.format(work=work, epochs=epochs)
    for i, (moment, arg) in enumerate(plan):
        if osp.exists(last):
            break
        extra = ('--resume', '--allow-fresh') if i else ()
        env = None
        if moment == 'save':
            marker = osp.join(logs, f'paused_{i}')
            env = {'CHAOS_PAUSE': f'{arg}:{marker}'}
        run = Training(config, work, osp.join(logs, f'{i}_{moment}.log'), *extra, env=env)
        if moment == 'step':
            _wait(lambda: run.steps() >= arg, run)
            time.sleep(rng.uniform(0, 0.3))
        elif moment == 'startup':
            time.sleep(arg)
        else:
            _wait(lambda: osp.exists(marker), run)
        killed = run.kill()
        if not killed:  # it ended first (the run finished): it must have ended well
            assert run.proc.returncode == 0, run.text()[-4000:]
        done.append(f'{moment} {arg:.3g}: {"killed" if killed else "ended"} after '
                    f'{run.steps()} steps')
    run = Training(config, work, osp.join(logs, 'final.log'), '--resume', '--allow-fresh')
    run.finish()
    done.append(f'final: {run.steps()} steps')
    return done


@pytest.mark.chaos
def test_chaos_sigkill_and_resume_ends_bit_identical(clips, tmp_path):
    """Without and with DataLoader workers (both at once, each its own
    processes): kills at seeded random moments, resumes, and the final
    weights equal an unbroken run's bit for bit."""
    from conftest import tiny_config
    epochs, results, threads = 3, {}, []
    for workers in (0, 2):
        base = tmp_path / f'workers{workers}'
        (base / 'logs').mkdir(parents=True)
        # checkpoints: iter_3, iter_6 (mid-epoch), epoch_2, iter_9 (mid-epoch), epoch_3
        cfg = with_iter_checkpoints(tiny_config(
            CONFIG, clips, base / 'unused',
            **dict(small(epochs, workers), **{'default_hooks.checkpoint.interval': 2})))
        config = str(base / 'tiny.py')
        cfg.dump(config)
        unbroken = Training(config, str(base / 'unbroken'), str(base / 'unbroken.log'))

        def go(workers=workers, base=base, config=config, unbroken=unbroken):
            try:
                results[workers] = chaos(config, str(base / 'chaos'), str(base / 'logs'),
                                         random.Random(1000 + workers), epochs)
                unbroken.finish()
            except BaseException as err:  # raised below, in the test
                results[workers] = err
                unbroken.kill()
        threads.append(threading.Thread(target=go))
        threads[-1].start()
    for t in threads:
        t.join()
    for workers in (0, 2):
        done = results[workers]
        if isinstance(done, BaseException):
            raise done
        base = tmp_path / f'workers{workers}'
        reference = weights(LAST.format(work=base / 'unbroken', epochs=epochs))
        final = weights(LAST.format(work=base / 'chaos', epochs=epochs))
        print(f'workers={workers}:', '; '.join(done))
        assert sum('killed' in d for d in done) >= 3, (workers, done)
        assert max_diff(final, reference) == 0, (workers, done)
        texts = ''.join(open(p, errors='replace').read()
                        for p in glob.glob(str(base / 'logs' / '*.log')))
        assert 'will not end with the weights' not in texts, (workers, done)


def test_two_processes_resume_exactly(clips, tmp_path):
    """DDP (2 gloo processes on CPU, 2 workers each): every rank's streams
    are gathered into rank 0's checkpoint, each rank takes its own back."""
    import shutil
    import socket
    from conftest import tiny_config
    cfg = with_iter_checkpoints(tiny_config(CONFIG, clips, tmp_path / 'unused', **dict(
        small(2, 2), **{'train_dataloader.batch_size': 1})))
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)

    def train(work, *extra):
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        env = dict(os.environ, PYTHON=sys.executable, PORT=str(port), OMP_NUM_THREADS='1',
                   PYTHONWARNINGS='ignore')
        proc = subprocess.run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config, '2',
                               '--work-dir', str(work), *extra], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        return proc.stdout + proc.stderr

    train(tmp_path / 'full')
    saved = torch.load(tmp_path / 'full' / 'iter_3.pth', weights_only=False)['rng_state']
    assert saved['world_size'] == 2 and len(saved['ranks']) == 2
    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    shutil.copy(tmp_path / 'full' / 'iter_3.pth', resumed)
    log = train(resumed, '--resume', str(resumed / 'iter_3.pth'))
    assert '1 of them are made again' in log and 'will not end with the weights' not in log
    assert max_diff(weights(resumed / 'epoch_2.pth'), weights(tmp_path / 'full' / 'epoch_2.pth')) == 0
