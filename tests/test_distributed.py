"""tools/dist_train.sh runs 2 processes (torchrun, gloo on CPU)."""
import os
import os.path as osp
import socket
import subprocess
import sys

import torch

from conftest import ROOT


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_training(motion_data, tmp_path):
    work = tmp_path / 'dist'
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    cmd = ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'),
           osp.join(ROOT, 'configs', 'tiny', 'amd_tiny_motion.py'), '2',
           '--work-dir', str(work), '--cfg-options',
           f'train_dataloader.dataset.ann_file={motion_data["train"]}',
           f'train_dataloader.dataset.data_prefix.video={motion_data["root"]}',
           'train_dataloader.batch_size=2', 'model.teacher.checkpoint=None',
           'train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1',
           'default_hooks.logger.interval=1']
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'Distributed training: True' in log
    ckpt = torch.load(work / 'epoch_1.pth', weights_only=False)
    # 12 clips, 2 ranks x batch 2 -> 3 iterations per epoch (one process: 6)
    assert ckpt['meta']['iter'] == 3
    assert not any('teacher' in k for k in ckpt['state_dict'])
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])
