"""Model parts against independent computations."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample

from amd_mmaction.heads import tubelet_target
from amd_mmaction.masks import AsymmetricTubeMask
from amd_mmaction.pretrain import mask_indices
from amd_mmaction.student import sinusoid_table

TINY = dict(type='VideoViT', img_size=32, patch_size=8, num_frames=4, tubelet_size=2)


def tiny_amd(manner='serial', teacher=True, **kw):
    cfg = dict(type='AMDPretrainer',
               student=dict(TINY, embed_dims=48, depth=4, num_heads=3),
               decoder=dict(type='PixelDecoder', embed_dims=32, depth=1, num_heads=2))
    if teacher:
        cfg.update(teacher=dict(type='FrozenTeacher', taps=(2, 4),
                                encoder=dict(TINY, embed_dims=64, depth=4, num_heads=4)),
                   alignment=dict(student_taps=(2, 4), manner=manner))
    cfg.update(kw)
    return MODELS.build(cfg)


def samples(n, grid=(2, 4, 4), r_stu=0.75, r_tea=0.5, mode='asymmetric', seed=0):
    t = AsymmetricTubeMask(grid=grid, student_ratio=r_stu, teacher_ratio=r_tea, mode=mode, seed=seed)
    out = []
    for _ in range(n):
        r = t({})
        ds = ActionDataSample()
        ds.set_field(r['mask_stu'], 'mask_stu')
        ds.set_field(r['mask_tea'], 'mask_tea')
        out.append(ds)
    return out


def test_sinusoid_table_matches_formula():
    tab = sinusoid_table(10, 6)[0]
    for pos in (0, 3, 9):
        for j in range(6):
            angle = pos / 10000 ** (2 * (j // 2) / 6)
            want = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert abs(tab[pos, j].item() - want) < 1e-6
    assert not any(n == 'pos_embed' for n, _ in MODELS.build(dict(TINY)).named_parameters())


def test_tubelet_target_against_loops():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 4, 16, 16)
    tgt = tubelet_target(x, tubelet=2, patch=8)
    assert tgt.shape == (2, 2 * 2 * 2, 2 * 8 * 8 * 3)
    for b in range(2):
        for ti in range(2):
            for hi in range(2):
                for wi in range(2):
                    n = ti * 4 + hi * 2 + wi
                    cube = x[b, :, 2 * ti:2 * ti + 2, 8 * hi:8 * hi + 8, 8 * wi:8 * wi + 8]
                    vals = cube.permute(1, 2, 3, 0).reshape(-1, 3)  # (t p q, c)
                    mean, std = vals.mean(0), vals.std(0, unbiased=True)
                    want = ((vals - mean) / (std + 1e-6)).reshape(-1)
                    torch.testing.assert_close(tgt[b, n], want, atol=1e-5, rtol=1e-5)


def test_vit_gather_equals_boolean_selection_and_taps():
    torch.manual_seed(0)
    vit = MODELS.build(dict(TINY, embed_dims=48, depth=3, num_heads=3)).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[0, [1, 5, 7, 30]] = True
    mask[1, [0, 2, 9, 31]] = True
    idx = mask_indices(mask)
    out, feats = vit(x, idx, taps=(1, 3))
    # Independent path: embed everything, select by boolean mask, run blocks.
    tok = vit.patch_embed.proj(x).flatten(2).transpose(1, 2) + vit.pos_embed
    sel = tok[mask].reshape(2, 4, -1)
    h = sel
    for blk in vit.blocks:
        h = blk(h)
    torch.testing.assert_close(feats[3], h)
    torch.testing.assert_close(out, vit.norm(h))
    # early exit returns the same tap values without running deeper layers
    out2, feats2 = vit(x, idx, taps=(1,), final=False)
    assert out2 is None and set(feats2) == {1}
    torch.testing.assert_close(feats2[1], feats[1])


def test_attention_matches_explicit_softmax():
    torch.manual_seed(0)
    vit = MODELS.build(dict(TINY, embed_dims=48, depth=1, num_heads=3))
    with torch.no_grad():
        vit.blocks[0].attn.q_bias.normal_()
        vit.blocks[0].attn.v_bias.normal_()
    attn = vit.blocks[0].attn
    x = torch.randn(2, 5, 48)
    W = attn.qkv.weight
    q = x @ W[:48].T + attn.q_bias
    k = x @ W[48:96].T  # no k bias
    v = x @ W[96:].T + attn.v_bias
    def heads(t):
        return t.view(2, 5, 3, 16).transpose(1, 2)
    a = torch.softmax(heads(q) @ heads(k).transpose(-1, -2) / 4.0, -1) @ heads(v)
    want = attn.proj(a.transpose(1, 2).reshape(2, 5, 48))
    torch.testing.assert_close(attn(x), want, atol=1e-5, rtol=1e-5)


def test_generator_adds_exactly_diff_tokens():
    m = tiny_amd()
    gen = m.aligner.generators[0]
    seen = {}
    def record(mod, args):
        seen['n'] = args[0].shape[1]
    hook = gen.blocks[0].register_forward_pre_hook(record)
    ds = samples(3)
    x = torch.randn(3, 3, 4, 32, 32)
    m(x, ds)
    hook.remove()
    n_vis = int((~ds[0].mask_stu).sum())
    n_diff = int((ds[0].mask_stu & ~ds[0].mask_tea).sum())
    assert n_diff == 2 * (12 - 8)
    assert seen['n'] == n_vis + n_diff  # not one mask token per masked token
    assert gen.mask_token.requires_grad and 'aligner.generators.0.mask_token' in m.state_dict()


def test_losses_equal_independent_computation():
    torch.manual_seed(0)
    m = tiny_amd()
    ds = samples(2)
    x = torch.randn(2, 3, 4, 32, 32)
    losses = m(x, ds)
    stu = torch.as_tensor(np.stack([d.mask_stu for d in ds]))
    tea = torch.as_tensor(np.stack([d.mask_tea for d in ds]))
    vis, msk, diff = ~stu, stu, stu & ~tea
    # reconstruction: MSE of masked-token predictions vs per-tubelet normalised pixels
    latent, feats = m.student(x, mask_indices(vis), taps=(2, 4))
    pred = m.decoder(latent, mask_indices(vis), mask_indices(msk))
    pix = (x * m.data_preprocessor.std + m.data_preprocessor.mean) / 255
    tgt = tubelet_target(pix, 2, 8)[msk].reshape(2, -1, 384)
    torch.testing.assert_close(losses['loss_recon'], ((pred - tgt) ** 2).mean())
    # teacher: raw block outputs on V then D tokens
    teach = m.teacher.encoder
    tok = teach.patch_embed.proj(x).flatten(2).transpose(1, 2) + teach.pos_embed
    h = torch.cat([tok[vis].reshape(2, -1, 64), tok[diff].reshape(2, -1, 64)], 1)
    outs = {}
    for i, blk in enumerate(teach.blocks, 1):
        h = blk(h)
        outs[i] = h
    nv = int(vis[0].sum())
    d, g = [], []
    for j, (ls, lt) in enumerate(((2, 2), (4, 4))):
        p = feats[ls] @ m.aligner.projections[j].weight.T
        d.append(F.mse_loss(p, outs[lt][:, :nv]))
        g.append(F.mse_loss(m.aligner.generators[j](p, mask_indices(vis), mask_indices(diff)),
                            outs[lt][:, nv:]))
    torch.testing.assert_close(losses['loss_dir'], sum(d) / 2)
    torch.testing.assert_close(losses['loss_gen'], sum(g) / 2)


@pytest.mark.parametrize('manner,keys', [
    ('serial', {'loss_recon', 'loss_dir', 'loss_gen'}),
    ('parallel', {'loss_recon', 'loss_dir', 'loss_gen'}),
    ('direct', {'loss_recon', 'loss_dir'}),
    ('generation', {'loss_recon', 'loss_gen'})])
def test_manners_give_their_losses(manner, keys):
    m = tiny_amd(manner)
    assert set(m(torch.randn(2, 3, 4, 32, 32), samples(2))) == keys
    has_gp = hasattr(m.aligner, 'generator_projections')
    assert has_gp == (manner == 'parallel')


def test_videomae_builds_no_teacher_and_dmae_needs_direct():
    m = tiny_amd(teacher=False)
    assert m.teacher is None and m.aligner is None
    assert set(m(torch.randn(2, 3, 4, 32, 32), samples(2))) == {'loss_recon'}
    sym = samples(2, r_stu=0.75, r_tea=0.75, mode='symmetric')
    assert set(tiny_amd('direct')(torch.randn(2, 3, 4, 32, 32), sym)) == {'loss_recon', 'loss_dir'}
    with pytest.raises(ValueError, match='teacher-only tokens'):
        tiny_amd('serial')(torch.randn(2, 3, 4, 32, 32), sym)


def test_teacher_frozen_outside_optimizer_and_state_dict():
    m = tiny_amd()
    assert m.teacher is not None
    assert not any(n.startswith('_teacher') or 'teacher' in n for n, _ in m.named_parameters())
    assert not any('teacher' in k for k in m.state_dict())
    assert all(not p.requires_grad for p in m.teacher.parameters())
    m.train()
    assert not m.teacher.training
    before = {k: v.clone() for k, v in m.teacher.state_dict().items()}
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    for _ in range(3):
        loss = sum(m(torch.randn(2, 3, 4, 32, 32), samples(2)).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(p.grad is None for p in m.teacher.parameters())
    for k, v in m.teacher.state_dict().items():
        assert torch.equal(v, before[k]), k
    # truncated after the deepest tap; still moved with the model
    m.to(torch.float64)
    assert next(m.teacher.parameters()).dtype == torch.float64


def test_teacher_bf16_autocast_close_to_fp32():
    m = tiny_amd()
    x = torch.randn(2, 3, 4, 32, 32)
    idx = torch.arange(16).expand(2, -1)
    ref = m.teacher(x, idx)
    m.teacher.autocast_dtype = torch.bfloat16
    low = m.teacher(x, idx)
    for k in ref:
        assert low[k].dtype == torch.float32
        assert (low[k] - ref[k]).abs().max() / ref[k].abs().max() < 0.05
