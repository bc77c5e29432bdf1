"""Every alignment manner trains through mmengine's Runner on real video
files; every paper config builds and runs one step at 16x224."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from conftest import CONFIGS

PAPER = sorted(glob.glob(osp.join(CONFIGS, 'pretrain', '*.py')))


@pytest.mark.parametrize('manner,mask_mode,losses', [
    ('serial', 'asymmetric', {'loss_recon', 'loss_dir', 'loss_gen'}),
    ('parallel', 'asymmetric', {'loss_recon', 'loss_dir', 'loss_gen'}),
    ('direct', 'asymmetric', {'loss_recon', 'loss_dir'}),
    ('generation', 'asymmetric', {'loss_recon', 'loss_gen'}),
    ('none', 'tube', {'loss_recon'}),
    ('direct', 'symmetric', {'loss_recon', 'loss_dir'}),  # DMAE
])
def test_manner_trains_through_runner(tiny_cfg, manner, mask_mode, losses):
    mask_key = 'train_dataloader.dataset.pipeline.3.transforms.3'
    cfg = tiny_cfg('amd_tiny_motion.py', **{
        'model.teacher.checkpoint': None,
        'model.alignment.manner': manner,
        f'{mask_key}.mode': mask_mode,
        f'{mask_key}.teacher_ratio': 0.9 if mask_mode == 'symmetric' else 0.75,
        'train_cfg.max_epochs': 1,
        'default_hooks.checkpoint.interval': 1,
    })
    runner = Runner.from_cfg(cfg)
    runner.train()
    hub = runner.message_hub
    for key in losses:
        assert torch.isfinite(torch.tensor(hub.get_scalar(f'train/{key}').current()))
    absent = {'loss_dir', 'loss_gen'} - losses
    assert not any(f'train/{k}' in hub.log_scalars for k in absent)
    ckpt = torch.load(osp.join(cfg.work_dir, 'epoch_1.pth'), weights_only=False)
    assert runner.iter == 3  # 12 clips / batch 4
    assert not any('teacher' in k for k in ckpt['state_dict'])
    assert (runner.model.teacher is None) == (manner == 'none')


@pytest.mark.parametrize('path', PAPER, ids=[osp.basename(p) for p in PAPER])
def test_paper_config_builds_and_steps(path):
    cfg = Config.fromfile(path)
    if cfg.model.get('teacher'):
        cfg.model.teacher.checkpoint = None  # the official file is not here
    from mmaction.registry import DATASETS, MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    model = MODELS.build(cfg.model)
    # the dataset and its pipeline build (the annotation file is not here)
    ds_cfg = dict(cfg.train_dataloader.dataset, lazy_init=True)
    dataset = DATASETS.build(ds_cfg)
    assert dataset.pipeline.transforms
    mask = cfg.train_pipeline[4]['transforms'][-1]
    from mmaction.registry import TRANSFORMS
    from mmaction.structures import ActionDataSample
    r = TRANSFORMS.build(mask)({})
    ds = ActionDataSample()
    ds.set_field(r['mask_stu'], 'mask_stu')
    ds.set_field(r['mask_tea'], 'mask_tea')
    x = torch.randn(1, 3, 16, 224, 224)
    losses = model(x, [ds])
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.student.patch_embed.proj.weight.grad is not None
    expect = {'loss_recon'} | ({'loss_dir', 'loss_gen'} if cfg.model.get('teacher') else set())
    assert set(losses) == expect
