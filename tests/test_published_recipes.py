"""Every shipped pre-training and fine-tuning config against the table of
published recipes (amd_mmaction/recipes.py): lr and min lr at the authors'
GPU count, videos per GPU, views, epochs, warm-up, teacher, head init; and
the 2-view fine-tuning step (labels per view, mixup/cutmix) through the real
Runner on real video files."""
import glob
import os.path as osp
import uuid

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from amd_mmaction.recipes import RECIPES, config_lr
from conftest import CONFIGS


def _shipped():
    found = glob.glob(osp.join(CONFIGS, 'pretrain', '*.py'))
    found += glob.glob(osp.join(CONFIGS, 'finetune', '*.py'))
    found += glob.glob(osp.join(CONFIGS, 'image', '[!_]*.py'))
    return sorted(osp.relpath(p, CONFIGS) for p in found)


def test_every_shipped_config_has_a_recipe():
    assert _shipped() == sorted(RECIPES), 'add new configs to amd_mmaction/recipes.py'


def _views(pipeline):
    reps = [t for t in pipeline if t['type'] == 'RepeatedAugment']
    return reps[0]['num_views'] if reps else 1


def _test_views(pipeline):
    clips = [t['num_clips'] for t in pipeline if 'num_clips' in t]
    crops = [3 if t['type'] == 'ThreeCrop' else 1 for t in pipeline
             if t['type'] in ('ThreeCrop', 'CenterCrop')]
    return clips[0], crops[0]


def check_recipe(cfg, r, name=''):
    """Raise AssertionError naming the config key that drifted from ``r``."""
    lr, min_lr = config_lr(cfg, r.gpus)
    assert lr == pytest.approx(r.lr_at_scale(), rel=1e-9), (
        f'{name}: lr at {r.gpus} GPUs is {lr}, published {r.lr_at_scale()}')
    assert min_lr == pytest.approx(r.min_lr_at_scale(), rel=1e-9, abs=1e-15), (
        f'{name}: min lr at {r.gpus} GPUs is {min_lr}, published {r.min_lr_at_scale()}')
    got = dict(per_gpu=cfg.train_dataloader.batch_size,
               views=_views(cfg.train_dataloader.dataset.pipeline),
               epochs=cfg.train_cfg.max_epochs)
    warm, cosine = cfg.param_scheduler
    got['warmup'] = warm['end']
    assert (cosine['begin'], cosine['end']) == (warm['end'], got['epochs']), name
    model = cfg.model
    if r.teacher is not None or model.get('teacher'):
        t = model.teacher
        got['teacher'] = (t.encoder.embed_dims, t.encoder.depth, tuple(t.taps))
        got['teacher_checkpoint'] = t.checkpoint
        got['student_taps'] = tuple(model.alignment.student_taps)
        assert tuple(model.alignment.teacher_taps) == tuple(t.taps), name
    if r.head_init_std is not None:
        got['head_init_std'] = model.cls_head.get('init_std', 0.02)
        got['drop_path'] = model.backbone.drop_path_rate
    if r.layer_decay is not None:
        got['layer_decay'] = cfg.optim_wrapper.paramwise_cfg.decay_rate
    if r.test_views is not None:
        got['test_views'] = _test_views(cfg.test_dataloader.dataset.pipeline)
    want = {k: getattr(r, k) for k in got}
    assert got == want, f'{name}: config {got} != published {want}'


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_config_matches_published_recipe(name):
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    check_recipe(cfg, RECIPES[name], name)


@pytest.mark.parametrize('key,value', [
    ('auto_scale_lr.base_batch_size', 64),          # the old 4x pre-training lr
    ('param_scheduler.1.eta_min_ratio', 1e-3),      # min lr off the rule
    ('model.teacher.encoder.embed_dims', 768),      # ViT-B teacher
    ('model.alignment.student_taps', (2, 4)),
])
def test_drift_in_a_pretrain_config_fails(key, value):
    name = 'pretrain/amd_vit-s_vit-l-teacher_16x224_ssv2.py'
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    cfg.merge_from_dict({key: value})
    with pytest.raises(AssertionError):
        check_recipe(cfg, RECIPES[name], name)


@pytest.mark.parametrize('key,value', [
    ('train_dataloader.batch_size', 8),
    ('train_dataloader.dataset.pipeline.4.num_views', 1),
    ('model.cls_head.init_std', 0.02),
    ('optim_wrapper.optimizer.lr', 7e-4),
    ('test_dataloader.dataset.pipeline.1.num_clips', 5),
])
def test_drift_in_a_finetune_config_fails(key, value):
    name = 'finetune/vit-b_amd-pre_16x224_ssv2.py'
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    cfg.merge_from_dict({key: value})
    with pytest.raises(AssertionError):
        check_recipe(cfg, RECIPES[name], name)


@pytest.mark.parametrize('name', ['finetune/vit-s_amd-pre_16x224_ssv2.py',
                                  'image/finetune_vit-b_224_in1k.py'])
def test_head_init_really_applies(name):
    """mmaction2's head init, as the Runner calls it, gives the published std."""
    from mmaction.registry import MODELS
    init_default_scope('mmaction')
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    cfg.model.backbone.update(depth=1)  # the head is what is checked
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    fc = model.cls_head.fc_cls
    assert fc.weight.std().item() == pytest.approx(RECIPES[name].head_init_std, rel=0.05)
    assert torch.count_nonzero(fc.bias) == 0


def test_multiview_head_repeats_labels_per_view():
    from mmaction.registry import MODELS
    from mmaction.structures import ActionDataSample
    init_default_scope('mmaction')
    head = MODELS.build(dict(type='MultiViewTimeSformerHead', num_classes=5,
                             in_channels=4, label_smooth_eps=0.1))
    samples = [ActionDataSample().set_gt_label(torch.tensor([c])) for c in (1, 3)]
    scores = torch.randn(4, 5)  # video 0: rows 0, 1; video 1: rows 2, 3
    target = torch.full((4, 5), 0.02)
    target[[0, 1], 1] += 0.9
    target[[2, 3], 3] += 0.9
    want = -(target * scores.log_softmax(1)).sum(1).mean()
    got = head.loss_by_feat(scores, samples)['loss_cls']
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    with pytest.raises(ValueError, match='3 clip scores for 2 videos'):
        head.loss_by_feat(scores[:3], samples)


def test_two_view_finetuning_through_runner(motion_data, tmp_path):
    """The published SSV2 fine-tuning config, backbone shrunk, trains through
    mmengine's Runner on real VP9 clips: 2 views per video with mixup/cutmix,
    lr auto-scaled on videos."""
    name = 'finetune/vit-s_amd-pre_16x224_ssv2.py'
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    loader = dict(num_workers=0, persistent_workers=False)
    cfg.merge_from_dict({
        'model.backbone.embed_dims': 48, 'model.backbone.depth': 1,
        'model.backbone.num_heads': 2, 'model.cls_head.in_channels': 48,
        'model.cls_head.num_classes': 6,
        'model.data_preprocessor.blending.augments': [
            dict(type='MixupBlending', alpha=0.8, num_classes=6),
            dict(type='CutmixBlending', alpha=1.0, num_classes=6)],
        'train_dataloader': dict(loader, batch_size=4, dataset=dict(
            ann_file=motion_data['train'], data_prefix=dict(video=motion_data['root']))),
        'train_cfg.max_epochs': 1,
        'val_dataloader': None, 'val_cfg': None, 'val_evaluator': None,
        'test_dataloader': None, 'test_cfg': None, 'test_evaluator': None,
        'default_hooks.checkpoint.save_best': None,
        'default_hooks.logger.interval': 1,
        'work_dir': str(tmp_path / 'work'),
        'experiment_name': f'recipes_{uuid.uuid4().hex[:8]}',
        'randomness': dict(seed=0),
    })
    runner = Runner.from_cfg(cfg)
    seen = []
    head = runner.model.cls_head
    spied = head.loss_by_feat

    def spy(scores, samples):
        seen.append((tuple(scores.shape), [s.gt_label.clone() for s in samples]))
        return spied(scores, samples)
    head.loss_by_feat = spy
    runner.train()
    # 12 videos / 4 per step, 2 views each: 8 clip scores for 4 labels a step
    assert runner.iter == 3
    assert [(shape, len(labels)) for shape, labels in seen] == [((8, 6), 4)] * 3
    # mixup/cutmix ran on the 2-view batch: soft labels summing to 1
    labels = torch.stack(seen[0][1])
    assert labels.shape == (4, 6) and labels.dtype.is_floating_point
    assert torch.allclose(labels.sum(1), torch.ones(4)) and labels.max() < 1
    # lr per 256 videos (the views do not count), top layer-decay group
    lr = max(g['initial_lr'] for g in runner.optim_wrapper.optimizer.param_groups)
    assert lr == pytest.approx(1e-3 * 4 / 256)
    assert np.isfinite(runner.message_hub.get_scalar('train/loss_cls').current())


def test_image_finetune_pipeline_runs_randaugment_on_a_png(tmp_path):
    """MAE's fine-tuning augmentation, RandAugment m9 n2 included, on a real
    PNG written and decoded through the config's own pipeline."""
    from mmcv.transforms import Compose
    from mmaction.registry import TRANSFORMS
    from amd_mmaction.transfer.image.synthetic import make_shape_dataset
    init_default_scope('mmaction')
    data = make_shape_dataset(str(tmp_path), num_train=1, num_val=1, size=64, seed=0)
    cfg = Config.fromfile(osp.join(CONFIGS, 'image', 'finetune_vit-s_224_in1k.py'))
    aug = [t for t in cfg.train_pipeline if t['type'] == 'VideoRandAugment']
    assert [(t['magnitude'], t['num_layers'], t['magnitude_std']) for t in aug] == [(9, 2, 0.5)]
    pipeline = Compose([TRANSFORMS.build(dict(t)) for t in cfg.train_pipeline])
    png = glob.glob(osp.join(data['root'], 'train', '*', '*.png'))[0]
    item = pipeline(dict(filename=png, label=0, clip_len=1, num_clips=1,
                         modality='RGB', start_index=0))
    assert item['inputs'].shape == (1, 3, 1, 224, 224)
