"""Every door honest, round three (docs/reliability.md), through real
processes on real files; every refusal checks the exit code, the one-line
message (no traceback) and that nothing on disk was lost or changed (bytes).

* one run per work dir: a second tools/train.py / tools/test.py /
  tools/dist_train.sh there fails at once naming the holder; the lock of a
  killed run is no obstacle;
* writing tools never replace one of their inputs, nor an existing output
  without --force, and write atomically;
* the unclear cases: a teacher path naming last_checkpoint, --resume DIR,
  an unrecorded epoch_1.pth, a disk that holds one checkpoint only;
* untrusted checkpoints at every door: one line, the same opt-in.
"""
import glob
import hashlib
import os
import os.path as osp
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from amd_mmaction.engine.cli import OutputRefused, atomic_output, check_output
from amd_mmaction.engine.lock import WorkDirLock, WorkDirLocked, takes_lock
from amd_mmaction.weights.io import TRUST_ENV

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(ROOT, 'tools')
TINY = osp.join(ROOT, 'configs', 'tiny')
SMALL = {'model.student.depth': 1, 'model.decoder.depth': 1, 'train_cfg.max_epochs': 1,
         'default_hooks.checkpoint.interval': 1, 'default_hooks.checkpoint.max_keep_ckpts': 1}


def env(**extra):
    out = {k: v for k, v in os.environ.items() if k != TRUST_ENV}
    out.update(PYTHONPATH=ROOT, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore', **extra)
    return out


def run(*args, timeout=300, **extra):
    """A tool as its own process: (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env(**extra), timeout=timeout,
                          capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def tool(name, *args, **kw):
    return run(osp.join(TOOLS, name), *args, **kw)


def train(config, work, *extra, **kw):
    return tool('train.py', config, '--work-dir', str(work), *extra, **kw)


def refused(rc, out, err, prog, *needles, prefix=None):
    """Exit 1 and exactly one line '<prog>: error: ...' (the export tools:
    'export failed: ...') holding ``needles`` on stderr, no traceback."""
    assert rc == 1, (rc, out[-2000:], err[-3000:])
    assert 'Traceback' not in err and 'Traceback' not in out, err[-3000:]
    prefix = prefix or f'{prog}: error: '
    lines = [line for line in err.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, err[-3000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def contents(*paths):
    """{file: sha256} of every file under ``paths`` (files or folders)."""
    out = {}
    for path in paths:
        files = [path] if osp.isfile(path) else \
            [osp.join(d, f) for d, _, fs in os.walk(path) for f in fs]
        for f in files:
            with open(f, 'rb') as fh:
                out[f] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.fixture(scope='module')
def trained(motion_data, tmp_path_factory):
    """A finished 1-epoch tiny VideoMAE student run: (config, work dir)."""
    from conftest import tiny_config
    tmp = tmp_path_factory.mktemp('round3')
    config = str(tmp / 'tiny.py')
    tiny_config('videomae_student_tiny_motion.py', motion_data, tmp / 'unused',
                **SMALL).dump(config)
    work = str(tmp / 'run')
    rc, out, err = train(config, work)
    assert rc == 0, err[-3000:]
    assert not osp.exists(osp.join(work, '.lock'))  # a clean exit removes it
    return config, work


class Payload:
    """Unpickled by a full unpickle, it runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def untrusted(src, dst, marker):
    """``src`` (our own checkpoint) with a key whose unpickling runs code."""
    ckpt = torch.load(src, map_location='cpu', weights_only=False)
    ckpt['x'] = Payload(marker)
    torch.save(ckpt, dst)
    return str(dst)


# -- one run per work dir -----------------------------------------------------------------
def test_takes_lock_only_global_rank_zero():
    assert takes_lock('none', {'RANK': '3'})  # no launcher: always
    assert takes_lock('pytorch', {'RANK': '0', 'LOCAL_RANK': '0'})
    assert not takes_lock('pytorch', {'RANK': '1', 'LOCAL_RANK': '0'})  # node 2's first
    assert takes_lock('slurm', {'SLURM_PROCID': '0'})
    assert not takes_lock('slurm', {'SLURM_PROCID': '2'})
    assert not takes_lock('mpi', {'OMPI_COMM_WORLD_RANK': '1'})
    assert takes_lock('pytorch', {})


def test_lock_refuses_a_second_holder_and_cleans_up(tmp_path):
    work = tmp_path / 'a' / 'b'
    with WorkDirLock(str(work), 'first') as lock:
        assert lock.held and osp.isfile(work / '.lock')
        with pytest.raises(WorkDirLocked, match=rf'in use by another run: pid {os.getpid()} '):
            WorkDirLock(str(work), 'second').acquire()
    # the lock made a and a/b; nothing else was written: both are gone
    assert not osp.exists(tmp_path / 'a')


def test_second_run_in_a_work_dir_fails_at_once(trained, motion_data, tmp_path):
    """A long run A holds W; train.py and test.py there are refused naming
    A's pid and start time, and W is byte for byte as A left it. A is then
    SIGKILLed: its .lock stays, unlocked, and --resume takes it."""
    config, _ = trained
    work = str(tmp_path / 'w')
    holder = subprocess.Popen(
        [sys.executable, osp.join(TOOLS, 'train.py'), config, '--work-dir', work,
         '--cfg-options', 'train_cfg.max_epochs=1000'],
        cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not osp.isfile(osp.join(work, 'last_checkpoint')) and time.time() < deadline:
            assert holder.poll() is None, 'the holder ended early'
            time.sleep(0.1)
        os.kill(holder.pid, signal.SIGSTOP)  # frozen: writes nothing while the others try
        lock = open(osp.join(work, '.lock')).read()
        assert f'pid: {holder.pid}\n' in lock and 'started: ' in lock
        started = lock.split('started: ')[1].split('\n')[0]
        before = contents(work)

        rc, out, err = train(config, work)
        refused(rc, out, err, 'train.py', f'work dir {work} is in use by another run: pid '
                f'{holder.pid} on {socket.gethostname()}, started {started}',
                '--work-dir', 'train.py')
        rc, out, err = tool('test.py', osp.join(TINY, 'finetune_tiny_motion.py'),
                            osp.join(work, 'last_checkpoint'), '--work-dir', work)
        refused(rc, out, err, 'test.py', f'pid {holder.pid}', started)
        assert contents(work) == before
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert open(osp.join(work, '.lock')).read() == lock  # stale: its holder is gone
    epoch = int(open(osp.join(work, 'last_checkpoint')).read().split('_')[1].split('.')[0])
    rc, out, err = train(config, work, '--resume', '--cfg-options',
                         f'train_cfg.max_epochs={epoch + 1}')
    assert rc == 0, err[-3000:]
    assert open(osp.join(work, 'last_checkpoint')).read() == f'epoch_{epoch + 1}.pth'
    assert not osp.exists(osp.join(work, '.lock'))


def test_distributed_run_is_refused_by_rank_zero(trained, tmp_path):
    """dist_train.sh: only rank 0 takes the lock (the ranks of one job share
    it; tests/test_distributed.py trains with 2 ranks); in a held work dir
    rank 0 refuses and torchrun stops the other rank."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    work = str(tmp_path / 'dist')
    with WorkDirLock(work, 'the test'):
        proc = subprocess.run(['bash', osp.join(TOOLS, 'dist_train.sh'), trained[0], '2',
                               '--work-dir', work],
                              cwd=ROOT, env=env(PYTHON=sys.executable, PORT=str(port)),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode != 0
        assert f'train.py: error: work dir {work} is in use by another run: pid {os.getpid()}' \
            in proc.stderr, proc.stderr[-3000:]
        assert sorted(os.listdir(work)) == ['.lock']  # rank 1 wrote nothing either
    assert not osp.exists(work)


# -- outputs never destroy an input or an existing file --------------------------------
def test_check_output_rules(tmp_path):
    src = tmp_path / 'src.pth'
    src.write_bytes(b'x')
    os.link(src, tmp_path / 'hard.pth')
    os.symlink(src, tmp_path / 'soft.pth')
    for out in (src, tmp_path / 'hard.pth', tmp_path / 'soft.pth', tmp_path / '.' / 'src.pth'):
        with pytest.raises(OutputRefused, match='is one of the inputs'):
            check_output(str(out), [str(src)], force=True)
    with pytest.raises(FileNotFoundError, match="input '.*nothere' does not exist"):
        check_output(str(tmp_path / 'o'), [str(tmp_path / 'nothere')])
    (tmp_path / 'hf').mkdir()
    check_output(str(tmp_path / 'hf'), [str(src)], files=['config.json'])  # empty: fine
    (tmp_path / 'hf' / 'model.safetensors').write_bytes(b'w')
    with pytest.raises(OutputRefused, match=r'it would write .*hf/model.safetensors'):
        check_output(str(tmp_path / 'hf'), [str(tmp_path / 'hf' / 'model.safetensors')],
                     force=True, files=['config.json', 'model.safetensors'])
    (tmp_path / 'hf' / 'config.json').write_text('{}')
    with pytest.raises(OutputRefused, match='already holds config.json; add --force'):
        check_output(str(tmp_path / 'hf'), [str(src)], files=['config.json'])
    # a failed write leaves the old file and no temporary file
    with pytest.raises(RuntimeError):
        with atomic_output(str(src)) as tmp:
            open(tmp, 'wb').write(b'half')
            raise RuntimeError('killed')
    assert src.read_bytes() == b'x' and sorted(os.listdir(tmp_path)) == \
        ['hard.pth', 'hf', 'soft.pth', 'src.pth']


def test_export_checkpoint_never_replaces_its_input(trained, tmp_path):
    src = str(tmp_path / 'pre.pth')
    shutil.copy(osp.join(trained[1], 'epoch_1.pth'), src)
    os.symlink(src, tmp_path / 'link.pth')
    before = contents(src)
    for out in (src, str(tmp_path / 'link.pth')):
        rc, stdout, err = tool('export_checkpoint.py', src, out, '--num-frames', '8',
                               '--img-size', '64', '--force')
        refused(rc, stdout, err, '', f'the output {out} is one of the inputs, {src}',
                prefix='export failed: ')
        assert contents(src) == before
    dst = str(tmp_path / 'out.pth')
    open(dst, 'wb').write(b'an older export')
    size = ['--num-frames', '8', '--img-size', '64']
    rc, stdout, err = tool('export_checkpoint.py', src, dst, *size)
    refused(rc, stdout, err, '', f'the output {dst} exists; add --force', prefix='export failed: ')
    assert open(dst, 'rb').read() == b'an older export'
    rc, stdout, err = tool('export_checkpoint.py', src, dst, *size, '--force')
    assert rc == 0, err[-3000:]
    assert f'wrote {dst}' in stdout and contents(src) == before
    assert all(k.startswith('backbone.') for k in torch.load(dst, weights_only=False)['state_dict'])
    assert sorted(os.listdir(tmp_path)) == ['link.pth', 'out.pth', 'pre.pth']  # no temporaries


def test_export_hf_folder_rules_and_trust(trained, tmp_path):
    src = osp.join(trained[1], 'epoch_1.pth')
    out = str(tmp_path / 'hf')
    rc, stdout, err = tool('export_hf.py', src, out)
    assert rc == 0, err[-3000:]
    assert sorted(os.listdir(out)) == ['config.json', 'model.safetensors']
    before = contents(out)
    rc, stdout, err = tool('export_hf.py', src, out)
    refused(rc, stdout, err, '', f'the output folder {out} already holds '
            'config.json, model.safetensors; add --force', prefix='export failed: ')
    rc, stdout, err = tool('export_hf.py', osp.join(out, 'model.safetensors'), out, '--force')
    refused(rc, stdout, err, '', f'it would write {out}/model.safetensors',
            prefix='export failed: ')
    assert contents(out) == before
    # export_hf.py reads checkpoints: --trust-checkpoint, as every such tool
    marker = tmp_path / 'pwned'
    evil = untrusted(src, tmp_path / 'evil.pth', marker)
    rc, stdout, err = tool('export_hf.py', evil, str(tmp_path / 'hf2'))
    refused(rc, stdout, err, '', 'posix.system', f'--trust-checkpoint {evil}',
            'tools/export_hf.py', prefix='export failed: ')
    assert not marker.exists() and not osp.exists(tmp_path / 'hf2')
    rc, stdout, err = tool('export_hf.py', evil, str(tmp_path / 'hf2'), '--trust-checkpoint', evil)
    assert rc == 0 and marker.exists(), err[-3000:]


def test_other_writing_tools_refuse_inputs_and_existing_outputs(trained, motion_data, tmp_path):
    config, work = trained
    ckpt = osp.join(work, 'epoch_1.pth')
    (scalars,) = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    video = osp.join(motion_data['root'], 'val', 'val_00000.webm')
    image_cfg = osp.join(TINY, 'amd_tiny_image.py')
    inputs = [config, ckpt, scalars, video, image_cfg]
    before = contents(*inputs)
    cases = [
        ('visualize_reconstruction.py', [config, ckpt, video, '--out', ckpt, '--force']),
        ('visualize_reconstruction.py', [config, ckpt, video, '--out', video]),
        ('plot_loss_curves.py', [work, '--out', scalars, '--force']),
        ('export_image_student.py', [image_cfg, ckpt, ckpt, '--force']),
        ('export_image_student.py', [image_cfg, ckpt, image_cfg]),
        ('model_zoo.py', [config, '--no-speed', '--out-md', config, '--force']),
    ]
    for name, args in cases:
        rc, out, err = tool(name, *args)
        refused(rc, out, err, name, 'is one of the inputs')
    assert contents(*inputs) == before
    png = str(tmp_path / 'curves.png')
    rc, out, err = tool('plot_loss_curves.py', work, '--out', png)
    assert rc == 0, err[-3000:]
    first = contents(png)
    rc, out, err = tool('plot_loss_curves.py', work, '--out', png, '--width', '4')
    refused(rc, out, err, 'plot_loss_curves.py', f'the output {png} exists; add --force')
    assert contents(png) == first
    rc, out, err = tool('plot_loss_curves.py', work, '--out', png, '--width', '4', '--force')
    assert rc == 0 and contents(png) != first, err[-3000:]
    assert sorted(os.listdir(tmp_path)) == ['curves.png']


# -- unclear cases: one line naming the file and the fix -------------------------------
def test_teacher_naming_last_checkpoint(trained, motion_data, tmp_path):
    pointer = osp.join(trained[1], 'last_checkpoint')
    before = contents(trained[1])
    rc, out, err = train(osp.join(TINY, 'amd_tiny_motion.py'), tmp_path / 'w', '--cfg-options',
                         f'model.teacher.checkpoint={pointer}',
                         f'train_dataloader.dataset.ann_file={motion_data["train"]}',
                         f'train_dataloader.dataset.data_prefix.video={motion_data["root"]}')
    refused(rc, out, err, 'train.py', f"{pointer!r} is not a checkpoint but a text file "
            "holding 'epoch_1.pth'", f'use the checkpoint it names: {trained[1]}/epoch_1.pth')
    assert 'pop from empty list' not in err
    assert contents(trained[1]) == before


def test_resume_a_folder_and_an_unrecorded_checkpoint(trained, tmp_path):
    config, done = trained
    work = str(tmp_path / 'w')
    shutil.copytree(done, work)
    before = contents(work)
    rc, out, err = train(config, work, '--resume', done)
    refused(rc, out, err, 'train.py', f'--resume: {done} is a folder, not a checkpoint file',
            f'--work-dir {done} --resume', f'e.g. {done}/epoch_1.pth')
    # killed while it wrote its first last_checkpoint: epoch_1.pth, no pointer
    os.remove(osp.join(work, 'last_checkpoint'))
    before = contents(work)
    for extra in ([], ['--allow-fresh']):  # starting fresh would replace it: refused too
        rc, out, err = train(config, work, '--resume', *extra)
        refused(rc, out, err, 'train.py', f'--resume: {work} has no last_checkpoint, but it '
                f'holds epoch_1.pth', f'--resume {work}/epoch_1.pth')
        assert contents(work) == before
    rc, out, err = train(config, work, '--resume', osp.join(work, 'epoch_1.pth'))
    assert rc == 0 and 'nothing to do, the run is finished' in out, err[-3000:]


@pytest.fixture
def small_disk(tmp_path):
    """A real 5 MiB tmpfs: one tiny checkpoint (about 2.8 MB) fits, two do not."""
    mnt = tmp_path / 'disk'
    mnt.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=5m', 'tmpfs', str(mnt)],
                      capture_output=True).returncode:
        pytest.skip('mounting a tmpfs needs root (CAP_SYS_ADMIN)')
    yield str(mnt)
    subprocess.run(['umount', '-l', str(mnt)], check=False)


def fill(folder):
    """Write until the disk is full; returns the filler file."""
    path = osp.join(folder, 'filler')
    with open(path, 'wb') as f:
        try:
            while True:
                f.write(b'\0' * 65536)
                f.flush()
        except OSError:
            pass
    return path


def test_disk_that_holds_one_checkpoint(trained, small_disk):
    config = trained[0]
    work = osp.join(small_disk, 'w')
    rc, out, err = train(config, work, '--cfg-options', 'train_cfg.max_epochs=2')
    ckpt1 = osp.join(work, 'epoch_1.pth')
    refused(rc, out, err, 'train.py', f'could not write checkpoint {work}/epoch_2.pth: No space '
            f'left on device; nothing of it was kept, the last complete checkpoint is still '
            f'{ckpt1}. This disk has no room for a second checkpoint beside {ckpt1}',
            'max_keep_ckpts is already 1', 'default_hooks.checkpoint.delete_before_save=True',
            'a kill or a failure during a save leaves no checkpoint at all')
    kept = contents(ckpt1, osp.join(work, 'last_checkpoint'))
    assert not glob.glob(osp.join(work, '.*.tmp'))

    # resuming while the disk is still full: refused at once, before any write
    listing = sorted(os.listdir(work))
    rc, out, err = train(config, work, '--resume', '--cfg-options', 'train_cfg.max_epochs=2')
    refused(rc, out, err, 'train.py', f'--resume: the disk of {work} has ', 'MiB free, but '
            f'the next checkpoint needs about {osp.getsize(ckpt1) / 2 ** 20:.1f} MiB (the size '
            f'of {ckpt1})', 'Nothing was written', 'delete_before_save=True')
    filler = fill(small_disk)
    rc, out, err = train(config, work, '--resume', '--cfg-options', 'train_cfg.max_epochs=2')
    refused(rc, out, err, 'train.py', 'has 0.0 MiB free')
    os.remove(filler)
    assert sorted(os.listdir(work)) == listing
    assert contents(ckpt1, osp.join(work, 'last_checkpoint')) == kept

    # the opt-in: the previous checkpoint is deleted before each save
    rc, out, err = train(config, work, '--resume', '--cfg-options', 'train_cfg.max_epochs=3',
                         'default_hooks.checkpoint.delete_before_save=True')
    assert rc == 0, err[-3000:]
    assert f'delete_before_save=True: deleted {ckpt1} before saving {work}/epoch_2.pth' in out + err
    assert sorted(glob.glob(osp.join(work, '*.pth'))) == [osp.join(work, 'epoch_3.pth')]
    assert open(osp.join(work, 'last_checkpoint')).read() == 'epoch_3.pth'


def test_delete_before_save_needs_keep_one():
    from amd_mmaction.engine.hooks.checkpoint import SafeCheckpointHook
    with pytest.raises(ValueError, match=r'delete_before_save=True needs max_keep_ckpts=1 '
                                         r'\(got 2\)'):
        SafeCheckpointHook(interval=1, max_keep_ckpts=2, delete_before_save=True)


# -- untrusted checkpoints: one clean line at every door -------------------------------
def test_untrusted_checkpoint_at_every_door(trained, motion_data, tmp_path):
    config, work = trained
    marker = tmp_path / 'pwned'
    evil = untrusted(osp.join(work, 'epoch_1.pth'), tmp_path / 'evil.pth', marker)
    data = [f'train_dataloader.dataset.ann_file={motion_data["train"]}',
            f'train_dataloader.dataset.data_prefix.video={motion_data["root"]}']
    tests = [f'{split}_dataloader.dataset.{key}'
             for split in ('val', 'test')
             for key in (f'ann_file={motion_data["val"]}',
                         f'data_prefix.video={motion_data["root"]}')]
    ft = osp.join(TINY, 'finetune_tiny_motion.py')
    amd_pretrained = str(tmp_path / 'ft_amd_pretrained.py')
    with open(amd_pretrained, 'w') as f:
        f.write(f"_base_ = [{ft!r}]\nmodel = dict(backbone=dict(init_cfg=dict("
                f"type='AMDPretrained', checkpoint={evil!r})))\n")
    doors = {
        'teacher': ('train.py', [osp.join(TINY, 'amd_tiny_motion.py'), '--work-dir',
                                 str(tmp_path / 't'), '--cfg-options',
                                 f'model.teacher.checkpoint={evil}', *data]),
        'load_from': ('train.py', [config, '--work-dir', str(tmp_path / 'l'), '--cfg-options',
                                   f'load_from={evil}']),
        'AMDPretrained': ('train.py', [amd_pretrained, '--work-dir', str(tmp_path / 'a'),
                                       '--cfg-options', *data, *tests,
                                       'train_cfg.max_epochs=1']),
        'test.py': ('test.py', [ft, evil, '--work-dir', str(tmp_path / 'x'),
                                '--cfg-options', *tests]),
    }
    before = contents(work, evil)
    for door, (name, args) in doors.items():
        rc, out, err = tool(name, *args)
        line = refused(rc, out, err, name, f"checkpoint '{evil}' was not loaded", 'posix.system',
                       f'{TRUST_ENV}={evil}', f'--trust-checkpoint {evil}')
        assert f'tools/{name}' in line, (door, line)  # the list of tools names this one
        assert not marker.exists(), door
    assert contents(work, evil) == before
    # refused before the Runner wrote anything: load_from and test.py
    assert not osp.exists(tmp_path / 'l') and not osp.exists(tmp_path / 'x')
    rc, out, err = tool('test.py', ft, evil, '--work-dir', str(tmp_path / 'x'),
                        '--cfg-options', *tests, **{TRUST_ENV: evil})
    assert marker.exists(), err[-3000:]  # the environment variable opts in too
