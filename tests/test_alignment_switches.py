"""The authors' switches (issue 13 items 4, 5): separate direct/generation
layer lists, loss factors, alignment loss type, raw pixel targets and the
generator head count. Each switch changes exactly what it should."""
import os.path as osp
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import MODELS

from mmaction.structures import ActionDataSample

from amd_mmaction.heads import tubelet_target
from amd_mmaction.masks import AsymmetricTubeMask
from amd_mmaction.pretrain import mask_indices

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = dict(type='VideoViT', img_size=32, patch_size=8, num_frames=4, tubelet_size=2)


def samples(n):
    """Data samples with asymmetric masks on the 2x4x4 grid (8 V, 8 D, 16 hidden)."""
    t = AsymmetricTubeMask(grid=(2, 4, 4), student_ratio=0.75, teacher_ratio=0.5, seed=0)
    out = []
    for _ in range(n):
        r, ds = t({}), ActionDataSample()
        ds.set_field(r['mask_stu'], 'mask_stu')
        ds.set_field(r['mask_tea'], 'mask_tea')
        out.append(ds)
    return out


def amd(alignment=None, teacher_taps=(2, 4), teacher_dims=64, **kw):
    torch.manual_seed(0)
    cfg = dict(type='AMDPretrainer',
               student=dict(TINY, embed_dims=48, depth=4, num_heads=3),
               decoder=dict(type='PixelDecoder', embed_dims=32, depth=1, num_heads=2),
               teacher=dict(type='FrozenTeacher', taps=teacher_taps,
                            encoder=dict(TINY, embed_dims=teacher_dims, depth=4, num_heads=4)),
               alignment=dict(dict(student_taps=(2, 4)), **(alignment or {})))
    cfg.update(kw)
    return MODELS.build(cfg)


def aligner(**kw):
    torch.manual_seed(0)
    cfg = dict(type='FeatureAligner', student_dims=8, teacher_dims=64, num_tokens=16,
               student_taps=(1, 2), teacher_taps=(1, 2))
    cfg.update(kw)
    return MODELS.build(cfg)


def feats(layers=(1, 2, 3), n_vis=4, n_diff=4):
    """Random student features on V, teacher features on [V, D], indices."""
    g = torch.Generator().manual_seed(1)
    stu = {l: torch.randn(2, n_vis, 8, generator=g).requires_grad_() for l in layers}
    tea = {l: 3 * torch.randn(2, n_vis + n_diff, 64, generator=g) for l in layers}
    perm = torch.randperm(16, generator=g)
    vis = perm[:n_vis].sort().values.expand(2, -1)
    diff = perm[n_vis:n_vis + n_diff].sort().values.expand(2, -1)
    return stu, tea, vis, diff


def grads(module, loss):
    module.zero_grad()
    loss.backward()
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
            for n, p in module.named_parameters()}


# -- separate layer lists, as the authors' code wires them --------------------
def authors_reference(m, x, ds, dir_layers, gen_layers):
    """The authors' PretrainAMD forward + engine loss, re-stated: student
    features collected in block order for each list, the i-th feature of
    *either* list through projection_heads[i], the teacher's dir features
    on its V tokens and gen features on its D tokens, MSE per layer averaged."""
    stu = torch.as_tensor(np.stack([d.mask_stu for d in ds]))
    tea = torch.as_tensor(np.stack([d.mask_tea for d in ds]))
    vis, diff = mask_indices(~stu), mask_indices(stu & ~tea)
    _, sf = m.student(x, vis, taps=range(1, 5))
    _, tf = m.teacher.encoder(x, torch.cat([vis, diff], 1), taps=range(1, 5), final=False)
    heads = m.aligner.projections
    nv = vis.shape[1]
    d = [F.mse_loss(heads[i](sf[s]), tf[t][:, :nv])
         for i, (s, t) in enumerate(dir_layers)]
    g = [F.mse_loss(m.aligner.generators[i](heads[i](sf[s]), vis, diff), tf[t][:, -diff.shape[1]:])
         for i, (s, t) in enumerate(gen_layers)]
    return sum(d) / len(d), sum(g) / len(g)


@pytest.mark.parametrize('gen_s, gen_t', [((4,), (4,)), ((3,), (3,)), ((2, 4), (2, 4))])
def test_serial_separate_lists_match_authors_wiring(gen_s, gen_t):
    # gen (3,) <-> (3,) is generation-only: the authors' code feeds it the
    # first direct projection (the one of layer 2)
    m = amd(dict(student_direct_taps=(2, 4), teacher_direct_taps=(2, 4),
                 student_gen_taps=gen_s, teacher_gen_taps=gen_t),
            teacher_taps=tuple(sorted({2, 4, *gen_t})))
    assert len(m.aligner.projections) == 2 and len(m.aligner.generators) == len(gen_s)
    x, ds = torch.randn(2, 3, 4, 32, 32), samples(2)
    losses = m(x, ds)
    ref_d, ref_g = authors_reference(m, x, ds, ((2, 2), (4, 4)), tuple(zip(gen_s, gen_t)))
    torch.testing.assert_close(losses['loss_dir'], ref_d)
    torch.testing.assert_close(losses['loss_gen'], ref_g)


def test_generation_only_layer_has_no_direct_loss():
    # parallel: direct at layer 1 only, generation at 1 and 3
    al = aligner(manner='parallel', student_direct_taps=(1,), teacher_direct_taps=(1,),
                 student_gen_taps=(1, 3), teacher_gen_taps=(1, 3))
    stu, tea, vis, diff = feats()
    out = al(stu, tea, vis, diff)
    torch.testing.assert_close(out['loss_dir'],
                               F.mse_loss(al.projections[0](stu[1]), tea[1][:, :4]))
    g3, = torch.autograd.grad(out['loss_dir'], stu[3], allow_unused=True)
    assert g3 is None  # layer 3 feeds only the generator
    assert torch.autograd.grad(out['loss_gen'], stu[3])[0].abs().sum() > 0
    assert al.student_taps == (1, 3) and len(al.generator_projections) == 2


# -- loss factors -------------------------------------------------------------
def test_dirfac_zero_leaves_only_the_generation_gradient():
    stu, tea, vis, diff = feats()
    ref = aligner()
    want = grads(ref, ref(stu, tea, vis, diff)['loss_gen'])
    al = aligner(dirfac=0.0)
    out = al(stu, tea, vis, diff)
    assert out['loss_dir'] == 0
    got = grads(al, sum(out.values()))
    assert set(got) == set(want)
    for n in want:  # projections included: only the generation path reaches them
        torch.testing.assert_close(got[n], want[n], msg=n)
    assert want['projections.0.weight'].abs().sum() > 0


def test_genfac_zero_gives_generators_no_gradient_and_factors_scale():
    stu, tea, vis, diff = feats()
    base = aligner()(stu, tea, vis, diff)
    al = aligner(genfac=0.0)
    got = grads(al, sum(al(stu, tea, vis, diff).values()))
    assert all(g.abs().sum() == 0 for n, g in got.items() if n.startswith('generators.'))
    assert got['projections.0.weight'].abs().sum() > 0
    out = aligner(dirfac=0.5, genfac=3.0)(stu, tea, vis, diff)
    torch.testing.assert_close(out['loss_dir'], 0.5 * base['loss_dir'])
    torch.testing.assert_close(out['loss_gen'], 3.0 * base['loss_gen'])


def test_recfac_scales_reconstruction_only():
    x, ds = torch.randn(2, 3, 4, 32, 32), samples(2)
    base = amd()(x, ds)
    m = amd(recfac=0.0)
    out = m(x, ds)
    assert out['loss_recon'] == 0
    torch.testing.assert_close(out['loss_dir'], base['loss_dir'])
    got = grads(m, sum(out.values()))
    assert all(g.abs().sum() == 0 for n, g in got.items() if n.startswith('decoder.'))
    torch.testing.assert_close(amd(recfac=2.0)(x, ds)['loss_recon'], 2 * base['loss_recon'])


# -- alignment loss type ------------------------------------------------------
def test_smooth_l1_equals_hand_computation():
    g = torch.Generator().manual_seed(0)
    p = [3 * torch.randn(2, 5, 6, generator=g) for _ in range(2)]
    t = [torch.randn(2, 5, 6, generator=g) for _ in range(2)]

    def hand(a, b):  # nn.SmoothL1Loss(): beta 1, mean over elements
        d = (a - b).abs()
        return torch.where(d < 1, 0.5 * d ** 2, d - 0.5).mean()
    want = (hand(p[0], t[0]) + hand(p[1], t[1])) / 2
    d0 = (p[0] - t[0]).abs()
    assert (d0 < 1).any() and (d0 >= 1).any()  # both branches are exercised
    for name in ('smooth_l1', 'sml1'):
        loss = MODELS.build(dict(type='FeatureAlignmentLoss', loss_type=name))
        torch.testing.assert_close(loss(p, t), want)
    l1 = MODELS.build(dict(type='FeatureAlignmentLoss', loss_type='l1'))
    torch.testing.assert_close(l1(p, t), ((p[0] - t[0]).abs().mean() + (p[1] - t[1]).abs().mean()) / 2)
    l2 = MODELS.build(dict(type='FeatureAlignmentLoss', loss_type='l2'))
    torch.testing.assert_close(l2(p, t), (((p[0] - t[0]) ** 2).mean() + ((p[1] - t[1]) ** 2).mean()) / 2)


# -- raw pixel targets --------------------------------------------------------
def test_raw_targets_are_the_0_1_tubelets():
    x = torch.rand(2, 3, 4, 16, 16)
    tgt = tubelet_target(x, tubelet=2, patch=8, norm='none')
    for b, ti, hi, wi in ((0, 0, 0, 0), (1, 1, 0, 1), (1, 1, 1, 1)):
        cube = x[b, :, 2 * ti:2 * ti + 2, 8 * hi:8 * hi + 8, 8 * wi:8 * wi + 8]
        assert torch.equal(tgt[b, ti * 4 + hi * 2 + wi], cube.permute(1, 2, 3, 0).reshape(-1))
    # end to end: the pretrainer's loss uses them
    m = amd(head=dict(type='ReconstructionHead', target_norm='none'))
    xx, ds = torch.randn(2, 3, 4, 32, 32), samples(2)
    out = m(xx, ds)
    stu = torch.as_tensor(np.stack([d.mask_stu for d in ds]))
    vis, msk = mask_indices(~stu), mask_indices(stu)
    latent, _ = m.student(xx, vis)
    pred = m.decoder(latent, vis, msk)
    pix = (xx * m.data_preprocessor.std + m.data_preprocessor.mean) / 255
    raw = tubelet_target(pix, 2, 8, norm='none')[stu].reshape(2, -1, 384)
    torch.testing.assert_close(out['loss_recon'], F.mse_loss(pred, raw))


# -- generator heads ----------------------------------------------------------
def test_generator_heads_default_width_over_64_and_override():
    m = amd(teacher_dims=128)
    assert m.aligner.generator_heads == 2
    assert all(b.attn.num_heads == 2 for g in m.aligner.generators for b in g.blocks)
    m = amd(dict(generator_heads=4), teacher_dims=128)
    assert all(b.attn.num_heads == 4 for g in m.aligner.generators for b in g.blocks)
    assert aligner(teacher_dims=32).generator_heads == 1  # at least one head


def test_tiny_configs_keep_the_teachers_head_count():
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    for name in ('amd_tiny_motion.py', 'amd_tiny_image.py'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', 'tiny', name))
        cfg.model.teacher.checkpoint = None
        m = MODELS.build(cfg.model)
        assert m.teacher.encoder.num_heads == 4, name
        assert all(b.attn.num_heads == 4 for g in m.aligner.generators for b in g.blocks), name


# -- validation ---------------------------------------------------------------
@pytest.mark.parametrize('kw, msg', [
    (dict(student_gen_taps=(2, 4), teacher_gen_taps=(4,)),
     'generation alignment: student_gen_taps=(2, 4) and teacher_gen_taps=(4,) must be non-empty and pair up'),
    (dict(student_direct_taps=(4, 2)), 'student_direct_taps=(4, 2) must be 1-based layers in strictly increasing'),
    (dict(manner='direct', student_gen_taps=(4,), teacher_gen_taps=(4,)),
     "student_gen_taps is set but manner='direct' computes no generation loss"),
    (dict(student_direct_taps=(4,), teacher_direct_taps=(4,)),
     'the 2 generation layers [2, 4] need at least as many direct layers, got [4]'),
    (dict(loss=dict(type='FeatureAlignmentLoss', loss_type='huber')),
     "loss_type must be one of ('mse', 'l2', 'l1', 'smooth_l1', 'sml1'), got 'huber'"),
    (dict(generator_heads=3), 'generator_heads=3 must be a positive integer dividing the teacher width 64'),
    (dict(dirfac=-1), 'alignment dirfac must be a number >= 0, got -1'),
])
def test_bad_alignment_settings_are_named(kw, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        amd(kw)


def test_bad_taps_against_the_networks_are_named():
    with pytest.raises(ValueError, match=re.escape('student feature taps [5] are outside layers 1..4')):
        amd(dict(student_gen_taps=(5,), teacher_gen_taps=(4,)))
    with pytest.raises(ValueError, match=re.escape(
            'alignment teacher layers (2, 3, 4) (teacher_taps, teacher_direct_taps, '
            'teacher_gen_taps) differ from the teacher taps (2, 4): set model.teacher.taps=(2, 3, 4)')):
        amd(dict(student_gen_taps=(3,), teacher_gen_taps=(3,)))
    with pytest.raises(ValueError, match=re.escape("target_norm must be 'channel' or 'patch' "
                                                   "(normalised tubelets) or 'none'")):
        amd(head=dict(type='ReconstructionHead', target_norm='raw'))
    # An old config's pixel_loss gets the new spelling, not a TypeError.
    with pytest.raises(ValueError, match=re.escape('model.pixel_loss was replaced by model.head')):
        amd(pixel_loss=dict(type='PixelReconstructionLoss'))
    with pytest.raises(ValueError, match=re.escape("target belongs to the head: model.head=dict(")):
        amd(head=dict(type='ReconstructionHead',
                      loss=dict(type='PixelReconstructionLoss', target_norm='none')))
    with pytest.raises(ValueError, match='recfac must be a number >= 0'):
        amd(recfac=float('nan'))


def test_reconstruction_view_takes_raw_predictions_as_pixels():
    from amd_mmaction.heads import unnormalise
    pixels, pred = torch.rand(3, 8, 3), torch.rand(3, 24)
    assert torch.equal(unnormalise(pred, pixels, 'none'), pred.reshape(3, 8, 3))
