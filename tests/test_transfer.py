"""Export of pre-training checkpoints to mmaction2 recognisers, the
AMDPretrained initialiser, and fine-tuning / linear probing / multi-view
testing through the real Runner on real video files."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from amd_mmaction.student.vit import VideoViT, sinusoid_table
from amd_mmaction.weights import CheckpointMismatch, export_checkpoint
from amd_mmaction.reproduce.stages import export_and_finetune, finetune_config
from conftest import CONFIGS, tiny_config
from mmaction.registry import MODELS

TINY = dict(img_size=64, patch_size=8, num_frames=8, tubelet_size=2)
STUDENT = dict(TINY, embed_dims=96, depth=4, num_heads=3)
TO_OFFICIAL = (('patch_embed.projection.', 'patch_embed.proj.'),
               ('.mlp.layers.0.0.', '.mlp.fc1.'), ('.mlp.layers.1.', '.mlp.fc2.'))


init_default_scope('mmaction')  # nested builds (data preprocessor) outside a Runner


def mm_vit(**kw):
    cfg = dict(type='VisionTransformer', qkv_bias=True, **dict(STUDENT, **kw))
    return MODELS.build(cfg)


def official_name(mm_key):
    for a, b in TO_OFFICIAL:
        mm_key = mm_key.replace(a, b)
    return mm_key


@pytest.fixture(scope='module')
def pretrain_ckpt(motion_data, tmp_path_factory):
    """A real AMD pre-training checkpoint (student, decoder, aligner with
    generators) after one epoch through the Runner."""
    work = tmp_path_factory.mktemp('amd_pre')
    cfg = tiny_config('amd_tiny_motion.py', motion_data, work,
                      **{'train_cfg.max_epochs': 1, 'model.teacher.checkpoint': None})
    Runner.from_cfg(cfg).train()
    return str(work / 'epoch_1.pth')


def student_state(path):
    state = torch.load(path, map_location='cpu', weights_only=False)['state_dict']
    return {k[len('student.'):]: v for k, v in state.items() if k.startswith('student.')}


def test_export_round_trip_keys_shapes_values(pretrain_ckpt, tmp_path):
    raw = torch.load(pretrain_ckpt, map_location='cpu', weights_only=False)['state_dict']
    assert any(k.startswith('aligner.') for k in raw) and any(k.startswith('decoder.') for k in raw)
    out = tmp_path / 'exported.pth'
    info = export_checkpoint(pretrain_ckpt, str(out), num_frames=8, img_size=64, num_heads=3)
    exported = torch.load(out, map_location='cpu', weights_only=False)['state_dict']
    recognizer = MODELS.build(Config.fromfile(
        osp.join(CONFIGS, 'tiny', 'finetune_tiny_motion.py')).model)
    fresh = {k: v for k, v in recognizer.state_dict().items() if k.startswith('backbone.')}
    assert sorted(exported) == sorted(fresh)
    assert {k: v.shape for k, v in exported.items()} == {k: v.shape for k, v in fresh.items()}
    student = student_state(pretrain_ckpt)
    for key, value in exported.items():
        name = key[len('backbone.'):]
        if name == 'pos_embed':
            assert torch.equal(value, fresh[key])
        elif name.startswith('fc_norm.'):  # fresh LayerNorm, as VideoMAE fine-tuning
            assert torch.equal(value, torch.ones_like(value) if name.endswith('weight')
                               else torch.zeros_like(value))
        else:
            assert torch.equal(value, student[official_name(name)]), key
    assert info['fresh'] == ['fc_norm.bias', 'fc_norm.weight']
    assert sorted(info['dropped']) == ['norm.bias', 'norm.weight']
    # Loads strictly into mmaction2's recognizer, head aside.
    missing, unexpected = recognizer.load_state_dict(exported, strict=False)
    assert sorted(missing) == ['cls_head.fc_cls.bias', 'cls_head.fc_cls.weight']
    assert unexpected == []


def test_exported_backbone_computes_what_the_student_computes(pretrain_ckpt, tmp_path):
    """Same weights, same function: the mmaction2 ViT (keeping the final
    norm, no pooling) reproduces the student's normed tokens."""
    out = str(tmp_path / 'exported.pth')
    export_checkpoint(pretrain_ckpt, out, num_frames=8, img_size=64, num_heads=3,
                      use_mean_pooling=False)
    state = torch.load(out, map_location='cpu', weights_only=False)['state_dict']
    vit = mm_vit(use_mean_pooling=False, return_feat_map=True).eval()
    vit.load_state_dict({k[len('backbone.'):]: v for k, v in state.items()})
    student = VideoViT(**STUDENT).eval()
    student.load_state_dict(student_state(pretrain_ckpt))
    x = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        ours = student(x)[0]
        theirs = vit(x).flatten(2).transpose(1, 2)
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)


def test_position_table_rebuilt_for_target_clip(pretrain_ckpt, tmp_path):
    out = str(tmp_path / 'exported_16x96.pth')
    info = export_checkpoint(pretrain_ckpt, out, num_frames=16, img_size=96, num_heads=3)
    pos = torch.load(out, weights_only=False)['state_dict']['backbone.pos_embed']
    assert pos.shape == (1, 8 * 12 * 12, 96)
    torch.testing.assert_close(pos, sinusoid_table(8 * 12 * 12, 96))
    assert info['rebuilt'] == ['pos_embed']
    vit = mm_vit(num_frames=16, img_size=96)
    vit.load_state_dict({k[len('backbone.'):]: v for k, v in
                         torch.load(out, weights_only=False)['state_dict'].items()})
    assert vit(torch.randn(1, 3, 16, 96, 96)).shape == (1, 96)


@pytest.mark.parametrize('wrapper', ['model', 'module'])
def test_official_videomae_format(tmp_path, wrapper):
    """encoder.* / decoder.* under 'model' or 'module' (VideoMAE, AMD
    releases): the decoder and the [MASK] token are left behind."""
    torch.manual_seed(0)
    enc = VideoViT(**STUDENT).state_dict()
    state = {f'encoder.{k}': v for k, v in enc.items()}
    state.update({'decoder.blocks.0.mlp.fc1.weight': torch.zeros(4, 4),
                  'encoder_to_decoder.weight': torch.zeros(4, 96),
                  'mask_token': torch.zeros(1, 1, 4)})
    src = str(tmp_path / 'videomae.pth')
    torch.save({wrapper: state, 'epoch': 799}, src)
    out = str(tmp_path / 'out.pth')
    export_checkpoint(src, out, num_frames=8, img_size=64)
    exported = torch.load(out, weights_only=False)['state_dict']
    assert sorted(exported) == sorted(f'backbone.{k}' for k in mm_vit().state_dict())
    assert torch.equal(exported['backbone.blocks.3.mlp.layers.1.weight'],
                       enc['blocks.3.mlp.fc2.weight'])
    assert torch.equal(exported['backbone.patch_embed.projection.weight'],
                       enc['patch_embed.proj.weight'])
    assert torch.equal(exported['backbone.blocks.0.attn.q_bias'], enc['blocks.0.attn.q_bias'])


def test_export_reads_its_source_once(pretrain_ckpt, tmp_path, monkeypatch):
    """Tensors and the heads the file records come from one read."""
    import amd_mmaction.weights.formats as formats
    reads, real = [], formats.load_checkpoint_file

    def counted(path, *args, **kwargs):  # the real loader, counted
        reads.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(formats, 'load_checkpoint_file', counted)
    out = export_checkpoint(pretrain_ckpt, str(tmp_path / 'out.pth'), num_frames=8,
                            img_size=64)
    assert reads == [pretrain_ckpt]
    assert out['num_heads_from'] == 'meta.cfg model.student.num_heads'


def test_biased_qkv_splits_into_q_and_v_bias_exactly(tmp_path):
    """MAE-style qkv with a k bias: mmaction2 has no k bias, and dropping it
    leaves attention unchanged (softmax ignores a per-query constant)."""
    torch.manual_seed(0)
    mae = VideoViT(**STUDENT, qkv_bias='qkv').eval()
    for blk in mae.blocks:
        torch.nn.init.normal_(blk.attn.qkv.bias)
    src = str(tmp_path / 'mae.pth')
    torch.save({'model': {f'encoder.{k}': v for k, v in mae.state_dict().items()}}, src)
    out = str(tmp_path / 'out.pth')
    export_checkpoint(src, out, num_frames=8, img_size=64, use_mean_pooling=False)
    vit = mm_vit(use_mean_pooling=False, return_feat_map=True).eval()
    vit.load_state_dict({k[len('backbone.'):]: v for k, v in
                         torch.load(out, weights_only=False)['state_dict'].items()})
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(vit(x).flatten(2).transpose(1, 2), mae(x)[0],
                                   rtol=1e-4, atol=1e-4)


def test_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        export_checkpoint(str(tmp_path / 'nowhere.pth'), str(tmp_path / 'o.pth'))
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='junk.pth.*not a readable torch file'):
        export_checkpoint(str(junk), str(tmp_path / 'o.pth'))
    headless = str(tmp_path / 'head_only.pth')
    torch.save({'state_dict': {'cls_head.fc_cls.weight': torch.zeros(6, 96)}}, headless)
    with pytest.raises(ValueError, match='head_only.pth: no encoder blocks'):
        export_checkpoint(headless, str(tmp_path / 'o.pth'))
    enc = {f'student.{k}': v for k, v in VideoViT(**STUDENT).state_dict().items()}
    ok = str(tmp_path / 'ok.pth')
    torch.save({'state_dict': enc}, ok)
    with pytest.raises(CheckpointMismatch, match='embed_dims=96 but 128'):
        export_checkpoint(ok, str(tmp_path / 'o.pth'), num_frames=8, img_size=64,
                          embed_dims=128)
    with pytest.raises(CheckpointMismatch, match='checkpoint has depth=4 but 6 was asked for'):
        export_checkpoint(ok, str(tmp_path / 'o.pth'), num_frames=8, img_size=64, depth=6)
    extra = str(tmp_path / 'cls.pth')
    torch.save({'state_dict': dict(enc, **{'student.cls_token': torch.zeros(1, 1, 96)})}, extra)
    with pytest.raises(CheckpointMismatch, match=r"\['cls_token'\]"):
        export_checkpoint(extra, str(tmp_path / 'o.pth'), num_frames=8, img_size=64)
    assert export_checkpoint(extra, str(tmp_path / 'o.pth'), num_frames=8, img_size=64,
                             strict=False)['unexpected'] == ['cls_token']
    assert not osp.exists(tmp_path / 'nowhere.pth')


def test_amdpretrained_init_cfg_loads_and_checks(pretrain_ckpt):
    cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', 'finetune_tiny_motion.py'))
    cfg.model.backbone.init_cfg.checkpoint = pretrain_ckpt
    model = MODELS.build(cfg.model)
    model.init_weights()
    student = student_state(pretrain_ckpt)
    own = model.backbone.state_dict()
    assert torch.equal(own['blocks.2.mlp.layers.0.0.weight'], student['blocks.2.mlp.fc1.weight'])
    assert torch.equal(own['patch_embed.projection.bias'], student['patch_embed.proj.bias'])
    # A deeper or wider backbone than the checkpoint: clear errors.
    cfg.model.backbone.depth = 6
    with pytest.raises(CheckpointMismatch, match='has 4 blocks but the target '
                                                 'VisionTransformer has 6; set depth=4'):
        MODELS.build(cfg.model).init_weights()
    cfg.model.backbone.depth = 4
    cfg.model.backbone.update(embed_dims=128, num_heads=4)
    cfg.model.cls_head.in_channels = 128
    with pytest.raises(CheckpointMismatch, match=r'checkpoint embed_dims=96, patch and tubelet '
                                                 r'\(2, 8, 8\); target 128'):
        MODELS.build(cfg.model).init_weights()


def test_layer_wise_lr_decay_groups():
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', 'finetune_tiny_motion.py'))
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr = {name: g['lr'] for g in wrapper.optimizer.param_groups for name in g['param_names']}
    base = cfg.optim_wrapper.optimizer.lr
    assert lr['backbone.patch_embed.projection.weight'] == pytest.approx(base * 0.75 ** 5)
    assert lr['backbone.blocks.0.attn.qkv.weight'] == pytest.approx(base * 0.75 ** 4)
    assert lr['backbone.blocks.3.attn.qkv.weight'] == pytest.approx(base * 0.75)
    assert lr['cls_head.fc_cls.weight'] == pytest.approx(base)
    decay = {name: g['weight_decay'] for g in wrapper.optimizer.param_groups
             for name in g['param_names']}
    assert decay['backbone.blocks.0.attn.q_bias'] == 0 and decay['cls_head.fc_cls.weight'] == 0.05


def test_finetune_through_runner_and_multi_view_test(pretrain_ckpt, motion_data, tmp_path):
    work = str(tmp_path / 'ft')
    cfg = finetune_config(motion_data, work)
    sample = Runner.build_dataloader(cfg.test_dataloader).dataset[0]
    assert sample['inputs'].shape == (6, 3, 8, 64, 64)  # 2 clips x 3 crops
    out = export_and_finetune(pretrain_ckpt, motion_data, work,
                              **{'train_cfg.max_epochs': 1, 'train_dataloader.batch_size': 4,
                                 'test_dataloader.batch_size': 6})
    assert 0.0 <= out['top1'] <= 1.0 and out['top5'] >= out['top1']
    tuned = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=False)['state_dict']
    exported = torch.load(out['exported'], weights_only=False)['state_dict']
    assert not any(k.startswith(('decoder', 'aligner', 'student')) for k in exported)
    assert set(exported) < set(tuned) and 'cls_head.fc_cls.weight' in tuned
    # It started from the export and trained.
    assert not torch.equal(tuned['backbone.blocks.0.attn.qkv.weight'],
                           exported['backbone.blocks.0.attn.qkv.weight'])


def test_linear_probe_keeps_backbone_frozen(pretrain_ckpt, motion_data, tmp_path):
    cfg = finetune_config(motion_data, str(tmp_path / 'lp'),
                          config=osp.join(CONFIGS, 'tiny', 'linear_probe_tiny_motion.py'),
                          pretrained=pretrain_ckpt,
                          **{'train_cfg.max_epochs': 1, 'train_dataloader.batch_size': 4})
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    assert set(metrics) >= {'acc/top1', 'acc/top5', 'acc/mean1'}
    student = student_state(pretrain_ckpt)
    own = runner.model.backbone.state_dict()
    assert torch.equal(own['blocks.3.attn.qkv.weight'], student['blocks.3.attn.qkv.weight'])
    assert torch.equal(own['patch_embed.projection.weight'], student['patch_embed.proj.weight'])
    assert not torch.equal(own['fc_norm.weight'], torch.ones(96))  # fc_norm learns


def test_export_cli(pretrain_ckpt, tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'export_cli', osp.join(osp.dirname(CONFIGS), 'tools', 'export_checkpoint.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = str(tmp_path / 'cli.pth')
    cli.main([pretrain_ckpt, out, '--num-frames', '16', '--img-size', '64'])
    printed = capsys.readouterr().out
    assert "rebuilt for 16x64: ['pos_embed']" in printed and 'wrote' in printed
    pos = torch.load(out, weights_only=False)['state_dict']['backbone.pos_embed']
    assert pos.shape == (1, 512, 96)
    with pytest.raises(SystemExit, match='export failed: .*nothere.pth'):
        cli.main([str(tmp_path / 'nothere.pth'), out])


def test_video_randaugment_one_draw_per_clip():
    from amd_mmaction.data.transforms.randaugment import VideoRandAugment
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    np.random.seed(0)
    out = VideoRandAugment(magnitude=9, num_layers=4, prob=1.0)(
        dict(imgs=[frame.copy() for _ in range(6)]))['imgs']
    assert all(np.array_equal(o, out[0]) for o in out)  # same ops for all frames
    assert out[0].shape == frame.shape and out[0].dtype == np.uint8
    assert not np.array_equal(out[0], frame)
    inv = VideoRandAugment(ops=('Invert',), num_layers=1, prob=1.0)(dict(imgs=[frame]))['imgs']
    assert np.array_equal(inv[0], 255 - frame)
    with pytest.raises(ValueError, match="unknown RandAugment ops \\['Blur'\\]"):
        VideoRandAugment(ops=('Blur',))


@pytest.mark.parametrize('config,views', [('vit-b_amd-pre_16x224_ssv2.py', 6),
                                          ('vit-s_amd-pre_16x224_k400.py', 15)])
def test_paper_pipelines_on_real_video(motion_data, config, views):
    """The paper configs' train (RandAugment, erasing) and multi-view test
    pipelines run on a real decoded clip."""
    cfg = Config.fromfile(osp.join(CONFIGS, 'finetune', config))
    for loader, n in (('train_dataloader', 2), ('test_dataloader', views)):
        ds = dict(cfg[loader].dataset, ann_file=motion_data['val'],
                  data_prefix=dict(video=motion_data['root']))
        sample = Runner.build_dataloader(dict(cfg[loader], dataset=ds, num_workers=0,
                                              persistent_workers=False)).dataset[0]
        assert sample['inputs'].shape == (n, 3, 16, 224, 224)
