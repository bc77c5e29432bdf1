"""The ImageMAE setting (issue 6): MAE's 2-D table, random patch masks,
MAE-format teachers, the image data path on real PNG files, pre-training,
export, fine-tuning, linear probing and the two paper configs."""
import copy
import os.path as osp
import uuid
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmaction.registry import DATASETS, MODELS, TRANSFORMS
from amd_mmaction.transfer.image import export_image_student, make_shape_dataset, vit_backbone_cfg
from amd_mmaction.heads import tubelet_target
from amd_mmaction.masks import AsymmetricTubeMask
from amd_mmaction.pretrain import mask_indices
from amd_mmaction.student import gather_tokens, sincos_2d_table

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs')
MAE_TINY = dict(type='VideoViT', img_size=32, patch_size=8, num_frames=1, tubelet_size=1,
                pos_embed='sincos2d', qkv_bias='qkv', with_cls_token=True,
                embed_dims=128, depth=6, num_heads=4)


def mae_table(h, w, dims):
    """MAE's 2-D sin-cos table written out from its definition: position
    grid = meshgrid(w, h) with w first, the first half of the channels
    encodes grid[0] (the column), the second grid[1] (the row), each as
    [sin(pos * omega) | cos(pos * omega)], omega_k = 1 / 10000^(k / (D/4))."""
    cols, rows = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    omega = 1.0 / 10000 ** (np.arange(dims // 4) / (dims / 4))

    def enc(pos):
        out = pos.reshape(-1)[:, None] * omega[None]
        return np.concatenate([np.sin(out), np.cos(out)], 1)

    return np.concatenate([enc(cols), enc(rows)], 1)


def mae_checkpoint(vit, prefix=''):
    """An official facebookresearch/mae pre-training state dict of ``vit``:
    Conv2d patch embedding, cls_token, stored (1, 1+N, C) table with a zero
    class row, biased qkv, final norm, and the decoder."""
    c = vit.embed_dims
    sd = {}
    for k, v in vit.state_dict().items():
        sd[k] = v.squeeze(2).clone() if k == 'patch_embed.proj.weight' else v.clone()
    table = torch.from_numpy(mae_table(vit.grid[1], vit.grid[2], c)).float()
    sd['pos_embed'] = torch.cat([torch.zeros(1, c), table])[None]
    sd.update({'mask_token': torch.zeros(1, 1, 32), 'decoder_embed.weight': torch.zeros(32, c),
               'decoder_pos_embed': torch.zeros(1, 17, 32),
               'decoder_blocks.0.attn.qkv.weight': torch.zeros(96, 32),
               'decoder_norm.weight': torch.ones(32), 'decoder_pred.weight': torch.zeros(192, 32)})
    return {prefix + k: v for k, v in sd.items()}


def mae_reference_feats(sd, blocks, x, keep_idx, taps, patch=8):
    """MAE's forward_encoder on kept tokens, written from the checkpoint:
    Conv2d, + stored table rows 1.., keep, prepend cls + table row 0."""
    tok = F.conv2d(x[:, :, 0], sd['patch_embed.proj.weight'], sd['patch_embed.proj.bias'],
                   stride=patch).flatten(2).transpose(1, 2)
    tok = gather_tokens(tok + sd['pos_embed'][:, 1:], keep_idx)
    cls = (sd['cls_token'] + sd['pos_embed'][:, :1]).expand(len(x), -1, -1)
    tok = torch.cat([cls, tok], 1)
    feats = {}
    for i, blk in enumerate(blocks, start=1):
        tok = blk(tok)
        if i in taps:
            feats[i] = tok
    return feats


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    """8 train + 8 val PNGs of 64x64, 4 shape classes, list and folder layout."""
    return make_shape_dataset(str(tmp_path_factory.mktemp('shapes')), num_train=8,
                              num_val=8, size=64, seed=0)


@pytest.fixture(scope='module')
def mae_teacher_file(tmp_path_factory):
    torch.manual_seed(1)
    path = str(tmp_path_factory.mktemp('mae') / 'mae_pretrain_tiny.pth')
    torch.save({'model': mae_checkpoint(MODELS.build(MAE_TINY))}, path)
    return path


# -- position table, masks, targets ------------------------------------------
@pytest.mark.parametrize('h,w,dims', [(14, 14, 384), (3, 5, 16)])
def test_sincos_2d_table_is_maes(h, w, dims):
    ours = sincos_2d_table(h, w, dims)[0]
    np.testing.assert_allclose(ours.numpy(), mae_table(h, w, dims), atol=1e-6)
    grid = ours.reshape(h, w, dims)
    # First half: the column only; second half: the row only.
    assert torch.equal(grid[0, :, :dims // 2], grid[h - 1, :, :dims // 2])
    assert torch.equal(grid[:, 0, dims // 2:], grid[:, w - 1, dims // 2:])
    assert not torch.equal(grid[:, 0, :dims // 2], grid[:, 1, :dims // 2])


def test_image_masks_are_random_patch_masks():
    t = AsymmetricTubeMask(grid=(1, 14, 14), student_ratio=0.75, teacher_ratio=0.5, seed=0)
    seen = set()
    for _ in range(20):
        r = t({})
        stu, tea = r['mask_stu'], r['mask_tea']
        assert stu.shape == tea.shape == (196,)
        assert stu.sum() == 147 and tea.sum() == 98  # int(0.75*196), int(0.5*196)
        assert not (tea & ~stu).any()  # student-visible is teacher-visible
        assert (~stu).sum() == 49 and (stu & ~tea).sum() == 49  # V and D
        seen.add(stu.tobytes())
    assert len(seen) == 20


def test_patch_norm_target_is_maes_norm_pix():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 1, 16, 16)
    tgt = tubelet_target(x, tubelet=1, patch=8, norm='patch')
    assert tgt.shape == (2, 4, 8 * 8 * 3)
    for b in range(2):
        for n, (hi, wi) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            vals = x[b, :, 0, 8 * hi:8 * hi + 8, 8 * wi:8 * wi + 8].permute(1, 2, 0).reshape(-1)
            want = (vals - vals.mean()) / (vals.var(unbiased=True) + 1e-6) ** 0.5
            torch.testing.assert_close(tgt[b, n], want, atol=1e-5, rtol=1e-5)
    # The video default stays per channel.
    assert torch.equal(tubelet_target(x, 1, 8), tubelet_target(x, 1, 8, norm='channel'))
    assert not torch.allclose(tubelet_target(x, 1, 8), tgt)
    with pytest.raises(ValueError, match="'channel' or 'patch'"):
        MODELS.build(dict(type='ReconstructionHead', target_norm='pixel'))


# -- MAE-format teachers ----------------------------------------------------
@pytest.mark.parametrize('prefix', ['', 'module.'])
def test_mae_teacher_matches_mae_forward(tmp_path, prefix):
    torch.manual_seed(0)
    src = MODELS.build(MAE_TINY).eval()
    sd = mae_checkpoint(src, prefix)
    path = tmp_path / 'mae.pth'
    torch.save({'model': sd, 'epoch': 799}, path)
    with warnings.catch_warnings():
        warnings.filterwarnings('error', message='.*pos_embed')  # a valid MAE table
        teacher = MODELS.build(dict(type='FrozenTeacher', taps=(3, 6), checkpoint=str(path),
                                    encoder=MAE_TINY))
    enc = teacher.encoder
    assert torch.equal(enc.cls_token, src.cls_token)
    assert torch.equal(enc.blocks[0].attn.qkv.bias, src.blocks[0].attn.qkv.bias)
    assert enc.norm is None and not any(p.requires_grad for p in teacher.parameters())
    x = torch.randn(2, 3, 1, 32, 32)
    mask = AsymmetricTubeMask(grid=(1, 4, 4), student_ratio=0.75, teacher_ratio=0.5, seed=3)
    m = [mask({}) for _ in range(2)]
    stu = torch.from_numpy(np.stack([r['mask_stu'] for r in m]))
    tea = torch.from_numpy(np.stack([r['mask_tea'] for r in m]))
    idx = torch.cat([mask_indices(~stu), mask_indices(stu & ~tea)], 1)  # [V, D]
    got = teacher(x, idx)
    plain = {k[len(prefix):]: v for k, v in sd.items()}
    want = mae_reference_feats(plain, src.blocks, x, idx, (3, 6))
    for layer in (3, 6):
        # One feature per V and D token: the class token is attended to but
        # never returned as a target.
        assert got[layer].shape == (2, idx.shape[1], 128)
        torch.testing.assert_close(got[layer], want[layer][:, 1:], atol=1e-5, rtol=1e-5)
    # The class token matters (it is attended to) ...
    teacher.encoder.cls_token.data += 1.0
    assert not torch.allclose(teacher(x, idx)[6], got[6])


def test_mae_stored_table_is_checked(tmp_path):
    torch.manual_seed(0)
    src = MODELS.build(MAE_TINY)

    def build(sd):
        path = tmp_path / 'bad.pth'
        torch.save({'model': sd}, path)
        return MODELS.build(dict(type='FrozenTeacher', taps=(3, 6), checkpoint=str(path),
                                 encoder=MAE_TINY))

    learned = mae_checkpoint(src)
    learned['pos_embed'][:, 1:] += 0.01 * torch.randn(16, 128)
    with pytest.raises(ValueError, match=r'bad\.pth: stored pos_embed .*differs .*max \|diff\|'):
        build(learned)
    one_d = mae_checkpoint(src)
    one_d['pos_embed'][:, 1:] = MODELS.build(dict(MAE_TINY, pos_embed='sincos1d')).pos_embed
    with pytest.raises(ValueError, match="matches pos_embed='sincos1d'"):
        build(one_d)
    cls_row = mae_checkpoint(src)
    cls_row['pos_embed'][:, 0] = 1.0
    with pytest.raises(ValueError, match='non-zero class-token row'):
        build(cls_row)
    wrong_grid = mae_checkpoint(src)
    wrong_grid['pos_embed'] = torch.zeros(1, 1 + 64, 128)
    with pytest.raises(ValueError, match=r'shape \(1, 65, 128\).*wrong img_size'):
        build(wrong_grid)


def test_amd_aligns_only_patch_tokens():
    torch.manual_seed(0)
    student = dict(MAE_TINY, with_cls_token=False, embed_dims=48, depth=4, num_heads=3)
    model = MODELS.build(dict(
        type='AMDPretrainer', student=student,
        decoder=dict(type='ImagePixelDecoder', embed_dims=32, depth=1, num_heads=2),
        teacher=dict(type='FrozenTeacher', taps=(3, 6), encoder=MAE_TINY),
        alignment=dict(student_taps=(2, 4), teacher_taps=(3, 6)),
        head=dict(type='ReconstructionHead', target_norm='patch')))
    seen = {}
    model.aligner.register_forward_hook(
        lambda m, args, out: seen.update(stu=args[0], tea=args[1], vis=args[2], diff=args[3]))
    from mmaction.structures import ActionDataSample
    mask = AsymmetricTubeMask(grid=(1, 4, 4), student_ratio=0.75, teacher_ratio=0.5, seed=0)
    samples = []
    for _ in range(2):
        r, ds = mask({}), ActionDataSample()
        ds.set_field(r['mask_stu'], 'mask_stu')
        ds.set_field(r['mask_tea'], 'mask_tea')
        samples.append(ds)
    losses = model(torch.randn(2, 1, 3, 1, 32, 32), samples, mode='loss')
    assert set(losses) == {'loss_recon', 'loss_dir', 'loss_gen'}
    assert seen['vis'].shape[1] == 4 and seen['diff'].shape[1] == 4
    for layer in (3, 6):
        assert seen['tea'][layer].shape == (2, 8, 128)  # V + D, no class token
    assert seen['stu'][2].shape == (2, 4, 48)
    assert model.decoder.pos_embed.shape == (1, 16, 32)
    torch.testing.assert_close(model.decoder.pos_embed, sincos_2d_table(4, 4, 32))


# -- data ---------------------------------------------------------------------
def test_image_dataset_list_and_folders(shapes, tmp_path):
    init_default_scope('mmaction')  # datasets build their pipelines by scope
    pipeline = [dict(type='ImageDecode')]
    listed = DATASETS.build(dict(type='ImageListDataset', ann_file=shapes['val'],
                                 data_prefix=dict(img=shapes['root']), pipeline=pipeline))
    folders = DATASETS.build(dict(type='ImageListDataset', ann_file='',
                                  data_prefix=dict(img=shapes['val_dir']), pipeline=pipeline))
    assert len(listed) == len(folders) == 8
    def pairs(ds):
        return sorted((ds.get_data_info(i)['filename'], ds.get_data_info(i)['label'])
                      for i in range(len(ds)))

    assert pairs(listed) == pairs(folders)
    assert folders.metainfo['classes'] == ('diamond', 'disc', 'square', 'triangle')
    item = listed[0]
    assert item['imgs'][0].shape == (64, 64, 3) and item['imgs'][0].dtype == np.uint8
    assert listed.get_data_info(0)['list_line'] == 1
    listed_file = open(shapes['val']).read().splitlines()[0].rsplit(' ', 1)[0]
    (tmp_path / 'empty.png').write_bytes(b'')
    bad = tmp_path / 'bad.txt'
    bad.write_text(f'{listed_file} 1\ntrain/b.png cat\nnot/there.png 2\n\n'
                   f'{tmp_path}/empty.png 0\n')
    with pytest.raises(ValueError) as err:  # every bad line, before any training
        DATASETS.build(dict(type='ImageListDataset', ann_file=str(bad),
                            data_prefix=dict(img=shapes['root']), pipeline=pipeline))
    root = shapes['root']
    assert str(err.value).splitlines() == [
        f'3 bad lines in {str(bad)!r}:',
        f'{bad}:2: expected "<path> <int label>", got \'train/b.png cat\'',
        f"{bad}:3: image {osp.join(root, 'not/there.png')!r} does not exist",
        f"{bad}:5: image {str(tmp_path / 'empty.png')!r} is a 0-byte file"]
    bad.write_text(f'{listed_file} 1\nnot/there.png 2\n')  # check_files=False: no stat
    unchecked = DATASETS.build(dict(type='ImageListDataset', ann_file=str(bad), check_files=False,
                                    data_prefix=dict(img=root), pipeline=pipeline))
    assert len(unchecked) == 2
    with pytest.raises(FileNotFoundError, match='nowhere'):
        DATASETS.build(dict(type='ImageListDataset', ann_file='',
                            data_prefix=dict(img=str(tmp_path / 'nowhere')), pipeline=pipeline))


def test_pretrain_pipeline_on_png(shapes):
    init_default_scope('mmaction')
    cfg = Config.fromfile(osp.join(CONFIGS, 'image', 'amd_vit-s_mae-b-teacher_224_in1k.py'))
    ds = DATASETS.build(dict(cfg.train_dataloader.dataset, ann_file=shapes['train'],
                             data_prefix=dict(img=shapes['root'])))
    item = ds[0]
    assert item['inputs'].shape == (1, 3, 1, 224, 224)
    s = item['data_samples']
    assert s.mask_stu.shape == (196,) and s.mask_stu.sum() == 147 and s.mask_tea.sum() == 98


# -- the tiny image setting through the real Runner ------------------------------
def tiny(name, shapes, work_dir, **overrides):
    cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', name))
    opts = {'train_dataloader.dataset.ann_file': shapes['train'],
            'train_dataloader.dataset.data_prefix.img': shapes['root'],
            'train_dataloader.batch_size': 4, 'work_dir': str(work_dir),
            'default_hooks.logger.interval': 1,
            # one logger/visualizer per Runner even when two start in the same second
            'experiment_name': f'{osp.splitext(name)[0]}_{uuid.uuid4().hex[:8]}'}
    if 'val_dataloader' in cfg:
        opts['val_dataloader.dataset.data_prefix.img'] = shapes['val_dir']
    opts.update(overrides)
    cfg.merge_from_dict(opts)
    return cfg


@pytest.fixture(scope='module')
def pretrained(shapes, mae_teacher_file, tmp_path_factory):
    """Two epochs (4 iterations) of tiny AMD image pre-training from the
    MAE-format teacher; returns the config and checkpoint."""
    work = tmp_path_factory.mktemp('pretrain')
    cfg = tiny('amd_tiny_image.py', shapes, work, **{
        'train_cfg.max_epochs': 2, 'model.teacher.checkpoint': mae_teacher_file,
        'default_hooks.checkpoint.interval': 2})
    runner = Runner.from_cfg(cfg)
    teacher_before = copy.deepcopy(runner.model.teacher.state_dict())
    student_before = copy.deepcopy(runner.model.student.state_dict())
    runner.train()
    return dict(cfg=cfg, runner=runner, ckpt=str(work / 'epoch_2.pth'),
                teacher_before=teacher_before, student_before=student_before)


def test_tiny_image_pretraining(pretrained):
    runner = pretrained['runner']
    assert runner.iter == 4
    scalars = runner.message_hub.log_scalars
    for key in ('train/loss_recon', 'train/loss_dir', 'train/loss_gen'):
        assert np.isfinite(scalars[key].current())
    model = runner.model
    for k, v in model.teacher.state_dict().items():  # frozen
        assert torch.equal(v, pretrained['teacher_before'][k]), k
    moved = [k for k, v in model.student.state_dict().items()
             if not torch.equal(v, pretrained['student_before'][k])]
    assert 'blocks.0.attn.qkv.weight' in moved
    saved = torch.load(pretrained['ckpt'], map_location='cpu', weights_only=False)['state_dict']
    assert not any(k.startswith(('teacher', '_teacher')) for k in saved)
    assert any(k.startswith('aligner.generators') for k in saved)


def test_export_is_exact(pretrained, tmp_path):
    student_cfg = pretrained['cfg'].model.student.to_dict()
    out = export_image_student(pretrained['ckpt'], student_cfg, str(tmp_path / 'vit.pth'))
    state = torch.load(out, map_location='cpu')['state_dict']
    assert all(k.startswith('backbone.') for k in state)
    assert not any('decoder' in k or 'aligner' in k or 'cls_token' in k for k in state)
    vit = MODELS.build(vit_backbone_cfg(student_cfg, return_feat_map=True)).eval()
    vit.load_state_dict({k[len('backbone.'):]: v for k, v in state.items()}, strict=True)
    student = pretrained['runner'].model.student.eval()
    x = torch.randn(2, 3, 1, 32, 32)
    _, feats = student(x, taps=(4,))
    got = vit(x).flatten(2).transpose(1, 2)  # (B, C, 1, 4, 4) -> tokens
    torch.testing.assert_close(got, feats[4], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='class token'):
        vit_backbone_cfg(dict(student_cfg, with_cls_token=True))
    # The command-line tool writes the same file from the config.
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'export_image_student', osp.join(osp.dirname(CONFIGS), 'tools', 'export_image_student.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg_path = osp.join(CONFIGS, 'tiny', 'amd_tiny_image.py')
    tool.main([cfg_path, pretrained['ckpt'], str(tmp_path / 'cli.pth')])
    cli = torch.load(tmp_path / 'cli.pth', map_location='cpu')['state_dict']
    assert cli.keys() == state.keys() and all(torch.equal(cli[k], state[k]) for k in state)


def test_tiny_image_finetune_and_linear_probe(pretrained, shapes, tmp_path):
    student_cfg = pretrained['cfg'].model.student.to_dict()
    ckpt = export_image_student(pretrained['ckpt'], student_cfg, str(tmp_path / 'vit.pth'))
    exported = torch.load(ckpt, map_location='cpu')['state_dict']
    cfg = tiny('finetune_tiny_image.py', shapes, tmp_path / 'ft',
               **{'train_cfg.max_epochs': 1, 'load_from': ckpt})
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    assert 0.0 <= runner.val()['acc/top1'] <= 1.0
    # The pre-trained weights and 2-D table were loaded, then trained.
    bb = runner.model.backbone.state_dict()
    assert torch.equal(bb['pos_embed'], exported['backbone.pos_embed'])
    assert not torch.equal(bb['blocks.0.attn.qkv.weight'],
                           exported['backbone.blocks.0.attn.qkv.weight'])

    probe = tiny('finetune_tiny_image.py', shapes, tmp_path / 'lp', **{
        'train_cfg.max_epochs': 1, 'load_from': ckpt,
        'custom_hooks': [dict(type='FreezeModulesHook', modules=('backbone',))]})
    runner = Runner.from_cfg(probe)
    runner.train()
    for k, v in runner.model.backbone.state_dict().items():
        if 'backbone.' + k in exported:
            assert torch.equal(v, exported['backbone.' + k]), k
    assert runner.model.cls_head.fc_cls.weight.requires_grad


# -- the two paper settings: build + one optimizer step at 224, batch 1 -------
@pytest.mark.parametrize('name,stu_dims,tea_dims,tea_taps', [
    ('amd_vit-s_mae-b-teacher_224_in1k.py', 384, 768, (6, 12)),
    ('amd_vit-b_mae-l-teacher_224_in1k.py', 768, 1024, (12, 24)),
])
def test_paper_image_config_one_step(shapes, name, stu_dims, tea_dims, tea_taps):
    from mmengine.optim import build_optim_wrapper
    init_default_scope('mmaction')
    cfg = Config.fromfile(osp.join(CONFIGS, 'image', name))
    cfg.model.teacher.checkpoint = None
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='FrozenTeacher has no checkpoint')
        model = MODELS.build(cfg.model)
    assert model.student.embed_dims == stu_dims and model.student.grid == (1, 14, 14)
    assert model.student.cls_token is None and model.teacher.encoder.cls_token is not None
    assert model.teacher.encoder.embed_dims == tea_dims and model.teacher.taps == tea_taps
    pipeline = Compose([TRANSFORMS.build(dict(t)) for t in cfg.train_pipeline])
    info = dict(filename=osp.join(shapes['root'], 'train', 'disc', 'train_00001.png'),
                label=1, clip_len=1, num_clips=1, modality='RGB', start_index=0)
    item = pipeline(info)
    data = dict(inputs=[item['inputs']], data_samples=[item['data_samples']])
    optim = build_optim_wrapper(model, dict(type='OptimWrapper',
                                            optimizer=dict(type='AdamW', lr=1e-4)))
    before = model.student.blocks[0].attn.qkv.weight.detach().clone()
    log = model.train_step(data, optim)
    assert all(torch.isfinite(v) for v in log.values())
    assert {'loss_recon', 'loss_dir', 'loss_gen'} <= set(log)
    assert not torch.equal(before, model.student.blocks[0].attn.qkv.weight)


@pytest.mark.parametrize('name', ['finetune_vit-s_224_in1k.py', 'finetune_vit-b_224_in1k.py',
                                  'linear_probe_vit-s_224_in1k.py',
                                  'linear_probe_vit-b_224_in1k.py'])
def test_paper_transfer_configs_build(name):
    init_default_scope('mmaction')
    cfg = Config.fromfile(osp.join(CONFIGS, 'image', name))
    # the data checks run before the first iteration (a probe's own hook list keeps them)
    assert {'BadClipLogHook', 'DataListCheckHook'} <= {h['type'] for h in cfg.custom_hooks}
    model = MODELS.build(cfg.model)
    dims = cfg.model.backbone.embed_dims
    assert model.cls_head.fc_cls.weight.shape == (1000, dims)
    student = 'vit-s' if dims == 384 else 'vit-b'
    pre = Config.fromfile(osp.join(CONFIGS, 'image', [
        'amd_vit-s_mae-b-teacher_224_in1k.py', 'amd_vit-b_mae-l-teacher_224_in1k.py'
    ][student == 'vit-b']))
    # The fine-tuning backbone is exactly the exported student's.
    want = vit_backbone_cfg(pre.model.student.to_dict())
    for key in ('img_size', 'patch_size', 'num_frames', 'tubelet_size', 'embed_dims',
                'depth', 'num_heads'):
        assert cfg.model.backbone[key] == want[key], key
    assert student in cfg.load_from
