"""The fast AMD step equals a plain reference; checkpointing / compile are
exact; the FLOP counter is right; the zoo and step benchmark write what
they promise. Behaviour only, never timings.

Tolerance of fast vs reference (fp32, docs/speed.md): losses rtol 1e-5,
gradients rtol 1e-4 / atol 1e-6 (summation order differs: linear vs
conv3d, fused SDPA vs explicit softmax).
"""
import math
import os.path as osp
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from mmengine.config import Config

import amd_mmaction  # noqa: F401
from amd_mmaction.benchmark.flops import amd_flops, token_counts
from amd_mmaction.benchmark.step import benchmark_config, build_model, mask_setting
from amd_mmaction.benchmark.timing import saved_tensor_bytes, synthetic_batch
from amd_mmaction.student.vit import VideoViT

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = osp.join(ROOT, 'configs/tiny/amd_tiny_motion.py')
LOSS_TOL = dict(rtol=1e-5, atol=1e-7)
GRAD_TOL = dict(rtol=1e-4, atol=1e-6)


def tiny_model(seed=0, alignment=None, **student):
    cfg = Config.fromfile(TINY)
    cfg.model.student.update(student)
    cfg.model.alignment.update(alignment or {})
    torch.manual_seed(seed)
    model, _ = build_model(cfg)
    # Random everything (default init leaves biases and norms trivial).
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in list(model.parameters()) + list(model.teacher.parameters()):
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.train(), mask_setting(cfg)


# -- an independent plain implementation -------------------------------------
def ref_table(n, d):
    """VideoMAE's sinusoid table recomputed every call."""
    angle = np.arange(n)[:, None] / np.power(10000, 2 * (np.arange(d)[None] // 2) / d)
    table = np.where(np.arange(d)[None] % 2 == 0, np.sin(angle), np.cos(angle))
    return torch.tensor(table, dtype=torch.float32)[None]


def ref_select(x, keep):
    """Boolean-mask copy: x (B, N, C), keep (B, N) with equal counts."""
    return x[keep].view(x.shape[0], -1, x.shape[-1])


def ref_block(blk, x):
    C = x.shape[-1]
    a = blk.attn
    h = F.layer_norm(x, (C,), blk.norm1.weight, blk.norm1.bias, blk.norm1.eps)
    bias = torch.cat([a.q_bias, torch.zeros(C), a.v_bias])
    q, k, v = (h @ a.qkv.weight.T + bias).split(C, -1)
    heads = a.num_heads

    def split(t):
        return t.reshape(t.shape[0], t.shape[1], heads, C // heads).transpose(1, 2)

    q, k, v = split(q), split(k), split(v)
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(C // heads), -1)
    o = (att @ v).transpose(1, 2).reshape(x.shape)
    x = x + o @ a.proj.weight.T + a.proj.bias
    h = F.layer_norm(x, (C,), blk.norm2.weight, blk.norm2.bias, blk.norm2.eps)
    h = F.gelu(h @ blk.mlp.fc1.weight.T + blk.mlp.fc1.bias)
    return x + h @ blk.mlp.fc2.weight.T + blk.mlp.fc2.bias


def ref_encoder(vit, x, keep, taps, final):
    conv = vit.patch_embed.proj
    tok = F.conv3d(x, conv.weight, conv.bias, stride=conv.kernel_size).flatten(2).transpose(1, 2)
    tok = ref_select(tok + ref_table(tok.shape[1], tok.shape[2]), keep)
    feats = {}
    for i, blk in enumerate(vit.blocks, start=1):
        tok = ref_block(blk, tok)
        feats[i] = tok
        if not final and i == max(taps):
            break
    out = F.layer_norm(tok, (tok.shape[-1],), vit.norm.weight, vit.norm.bias,
                       vit.norm.eps) if final else None
    return out, {t: feats[t] for t in taps}


def ref_target(pixels, tubelet, patch):
    B, C = pixels.shape[:2]
    u = pixels.unfold(2, tubelet, tubelet).unfold(3, patch, patch).unfold(4, patch, patch)
    # (B, C, T', H', W', t, p, q) -> (B, N, t*p*q, C)
    u = u.permute(0, 2, 3, 4, 5, 6, 7, 1).reshape(B, -1, tubelet * patch * patch, C)
    mean, std = u.mean(-2, keepdim=True), u.std(-2, keepdim=True)
    return ((u - mean) / (std + 1e-6)).flatten(2)


def ref_mask_tokens(x_vis, keep, hidden, mask_token, blocks, n_pos):
    pos = ref_table(n_pos, x_vis.shape[-1]).expand(len(x_vis), -1, -1)
    x = torch.cat([x_vis + ref_select(pos, keep), mask_token + ref_select(pos, hidden)], 1)
    for blk in blocks:
        x = ref_block(blk, x)
    return x[:, x_vis.shape[1]:]


def ref_losses(model, x, mask_stu, mask_tea):
    vis, diff, tea_keep = ~mask_stu, mask_stu & ~mask_tea, ~mask_tea
    st, dec, al, tea = model.student, model.decoder, model.aligner, model.teacher
    latent, feats = ref_encoder(st, x, vis, al.student_taps, final=True)
    z = latent @ dec.encoder_to_decoder.weight.T
    h = ref_mask_tokens(z, vis, mask_stu, dec.mask_token, dec.blocks, st.num_tokens)
    pred = F.layer_norm(h, (h.shape[-1],), dec.norm.weight, dec.norm.bias, dec.norm.eps)
    pred = pred @ dec.head.weight.T + dec.head.bias
    target = ref_select(ref_target(model.pixels(x), st.tubelet_size, st.patch_size), mask_stu)
    losses = {'loss_recon': F.mse_loss(pred, target)}
    with torch.no_grad():
        _, tfeats = ref_encoder(tea.encoder, x, tea_keep, tea.taps, final=False)
    d, g = [], []
    for i, (ls, lt) in enumerate(zip(al.student_taps, al.teacher_taps)):
        t = tfeats[lt]
        p = feats[ls] @ al.projections[i].weight.T
        d.append(F.mse_loss(p, ref_select(t, vis[tea_keep].view(len(x), -1))))
        gen = al.generators[i]
        gp = ref_mask_tokens(p, vis, diff, gen.mask_token, gen.blocks, st.num_tokens)
        g.append(F.mse_loss(gp, ref_select(t, diff[tea_keep].view(len(x), -1))))
    losses['loss_dir'] = sum(d) / len(d)
    losses['loss_gen'] = sum(g) / len(g)
    return losses


def grads_of(model, losses):
    for p in model.parameters():
        p.grad = None
    sum(losses.values()).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def masks_of(samples):
    return (torch.as_tensor(np.stack([s.mask_stu for s in samples])),
            torch.as_tensor(np.stack([s.mask_tea for s in samples])))


# -- tests ---------------------------------------------------------------------
def test_fast_step_equals_plain_reference():
    model, ms = tiny_model()
    x, samples = synthetic_batch(model, 3, ms['student_ratio'], ms['teacher_ratio'], seed=3)
    fast = model.loss(x, samples)
    ref = ref_losses(model, x, *masks_of(samples))
    assert set(fast) == set(ref)
    for k in ref:
        torch.testing.assert_close(fast[k], ref[k], **LOSS_TOL)
    g_fast, g_ref = grads_of(model, fast), grads_of(model, ref)
    assert set(g_fast) == set(g_ref) and len(g_ref) > 50
    for n in g_ref:
        torch.testing.assert_close(g_fast[n], g_ref[n], **GRAD_TOL, msg=n)


def test_reference_can_tell_a_wrong_step_apart():
    """The comparison bites: a teacher fed another clip's tokens differs."""
    model, ms = tiny_model()
    x, samples = synthetic_batch(model, 2, ms['student_ratio'], ms['teacher_ratio'], seed=4)
    ref = ref_losses(model, x, *masks_of(samples))
    samples[0].set_field(samples[1].mask_tea, 'mask_tea')
    samples[0].set_field(samples[1].mask_stu, 'mask_stu')
    wrong = model.loss(x, samples)
    assert not torch.allclose(wrong['loss_gen'], ref['loss_gen'], **LOSS_TOL)


def test_patch_embed_is_the_conv3d():
    vit = VideoViT(embed_dims=32, depth=1, num_heads=2, img_size=24, patch_size=8,
                   num_frames=6, tubelet_size=3)
    x = torch.randn(2, 3, 6, 24, 24)
    conv = vit.patch_embed.proj(x).flatten(2).transpose(1, 2)
    torch.testing.assert_close(vit.patch_embed(x), conv, rtol=1e-5, atol=1e-6)


def test_teacher_targets_need_no_grad_and_are_not_inference_tensors():
    # inference_mode would make the targets unusable in the MSE's backward
    # (they are saved for it), so the teacher runs under no_grad.
    model, ms = tiny_model()
    x, samples = synthetic_batch(model, 2, ms['student_ratio'], ms['teacher_ratio'])
    idx = torch.arange(40).expand(2, -1)
    feats = model.teacher(x, idx)
    for f in feats.values():
        assert not f.requires_grad and not f.is_inference() and f.dtype == torch.float32


def test_grad_checkpointing_is_exact_and_saves_memory():
    plain, ms = tiny_model()
    ckpt, _ = tiny_model(grad_checkpointing=True)
    assert ckpt.student.grad_checkpointing
    x, samples = synthetic_batch(plain, 2, ms['student_ratio'], ms['teacher_ratio'])
    lp, lc = plain.loss(x, samples), ckpt.loss(x, samples)
    for k in lp:
        torch.testing.assert_close(lc[k], lp[k], rtol=0, atol=0)
    gp, gc = grads_of(plain, lp), grads_of(ckpt, lc)
    for n in gp:
        torch.testing.assert_close(gc[n], gp[n], rtol=1e-6, atol=1e-8, msg=n)
    saved_plain = saved_tensor_bytes(lambda: plain.loss(x, samples))
    saved_ckpt = saved_tensor_bytes(lambda: ckpt.loss(x, samples))
    assert saved_ckpt < saved_plain


def test_compiled_blocks_equal_eager():
    # aot_eager: Dynamo capture + AOT autograd without C++ codegen, to stay
    # fast on CPU; the inductor default was checked by hand (docs/speed.md).
    kw = dict(embed_dims=32, depth=2, num_heads=2, img_size=16, patch_size=8,
              num_frames=4, tubelet_size=2)
    torch.manual_seed(0)
    eager = VideoViT(**kw)
    compiled = VideoViT(**kw, compile=dict(backend='aot_eager'))
    compiled.load_state_dict(eager.state_dict())
    assert set(compiled.state_dict()) == set(eager.state_dict())
    x = torch.randn(2, 3, 4, 16, 16)
    idx = torch.tensor([[0, 2, 5], [1, 3, 7]])
    ye, fe = eager(x, idx, taps=(1,))
    yc, fc = compiled(x, idx, taps=(1,))
    torch.testing.assert_close(yc, ye, **GRAD_TOL)
    torch.testing.assert_close(fc[1], fe[1], **GRAD_TOL)
    ye.square().sum().backward()
    yc.square().sum().backward()
    for (n, pe), (_, pc) in zip(eager.named_parameters(), compiled.named_parameters()):
        torch.testing.assert_close(pc.grad, pe.grad, **GRAD_TOL, msg=n)


@pytest.mark.parametrize('alignment, projection_runs', [
    ({}, 2),  # serial, one layer list: each projection runs once for both losses
    (dict(manner='parallel'), 4),
    # serial with different layers: generation's projection runs on its own layer too
    (dict(student_direct_taps=(2, 4), teacher_direct_taps=(3, 6),
          student_gen_taps=(3,), teacher_gen_taps=(6,)), 3)])
def test_flop_counter_matches_flopcountermode(alignment, projection_runs):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    model, ms = tiny_model(alignment=alignment)
    x, samples = synthetic_batch(model, 1, ms['student_ratio'], ms['teacher_ratio'])
    counts = token_counts(ms['grid'], ms['student_ratio'], ms['teacher_ratio'])
    ours = amd_flops(model, counts)
    from amd_mmaction.benchmark.timing import component_fns
    measured = {}
    with sdpa_kernel([SDPBackend.MATH]):  # the fused CPU kernel is not counted
        for name, fn in component_fns(model, x, samples).items():
            fn()  # build lazily created state outside the counter
            with FlopCounterMode(display=False) as fc:
                fn()
            measured[name] = fc.get_total_flops()
    assert set(measured) == set(ours) == {'teacher', 'encoder', 'decoder', 'generators',
                                          'projections'}
    assert measured['teacher'] == ours['teacher']['fwd']
    # Backward really skips the input gradient of the patch embedding (the
    # clip needs none); our convention counts bwd = 2 x fwd throughout.
    st = model.student
    k = st.patch_embed.proj.weight[0].numel()
    pe_input_grad = 2 * st.num_tokens * k * st.embed_dims
    assert measured['encoder'] == 3 * ours['encoder']['fwd'] - pe_input_grad
    for name in ('decoder', 'generators', 'projections'):
        assert measured[name] == ours[name]['fwd'] + ours[name]['bwd'], name
    one = 2 * counts['V'] * st.embed_dims * model.teacher.encoder.embed_dims
    assert measured['projections'] == 3 * projection_runs * one  # fwd + bwd (2x)


def test_flop_counter_gives_the_issue_figures():
    cfg = Config.fromfile(osp.join(ROOT, 'configs/pretrain/amd_vit-s_vit-b-teacher_16x224_k400.py'))
    model, note = build_model(cfg)
    assert 'random teacher' in note
    ms = mask_setting(cfg)
    assert ms['grid'] == (8, 14, 14) and ms['views'] == 4
    f = amd_flops(model, token_counts(ms['grid'], ms['student_ratio'], ms['teacher_ratio']))
    assert round(f['teacher']['fwd'] / 1e9) == 76
    student_side = sum(f[c]['fwd'] + f[c]['bwd'] for c in ('encoder', 'decoder', 'generators'))
    assert math.floor(student_side / 1e9) == 141


def test_step_benchmark_reports_both_models():
    cfg = Config.fromfile(TINY)
    out = benchmark_config(cfg, clips=1, warmup=0, iters=1)
    amd, base = out['amd'], out['videomae']
    assert set(amd['components']) == {'teacher', 'encoder', 'decoder', 'generators',
                                      'projections'}
    assert set(base['components']) == {'encoder', 'decoder'}
    assert amd['step_flops_per_clip'] > base['step_flops_per_clip'] > 0
    assert out['time_ratio'] == amd['step_s'] / base['step_s']
    for r in (amd, base):
        assert 0 < r['peak_fraction'] and r['memory']['activations'] > 0
    assert 'random teacher' in out['note']


def zoo_main():
    import importlib.util
    spec = importlib.util.spec_from_file_location('model_zoo', osp.join(ROOT, 'tools/model_zoo.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def test_model_zoo_writes_markdown_and_metafile(tmp_path):
    main = zoo_main()
    cfgs = [osp.join(ROOT, 'configs/tiny', n) for n in
            ('amd_tiny_motion.py', 'videomae_student_tiny_motion.py',
             'finetune_tiny_motion.py', '_tiny_base.py')]
    md, meta = tmp_path / 'zoo.md', tmp_path / 'meta.yml'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        main(cfgs + ['--no-speed', '--out-md', str(md), '--out-yaml', str(meta)])
    rows = [line for line in md.read_text().splitlines() if line.startswith('| [')]
    assert len(rows) == 3  # the _base_ fragment is skipped
    assert all(line.count('|') == 10 for line in rows)
    doc = yaml.safe_load(meta.read_text())
    assert doc['Collections'][0]['Name'] == 'AMD'
    models = {m['Name']: m for m in doc['Models']}
    assert set(models) == {'amd_tiny_motion', 'videomae_student_tiny_motion',
                           'finetune_tiny_motion'}
    amd = models['amd_tiny_motion']['Metadata']
    base = models['videomae_student_tiny_motion']['Metadata']
    assert amd['Teacher Parameters'] > 0 and 'Teacher Parameters' not in base
    assert amd['Parameters'] > base['Parameters'] > 0 and amd['FLOPs'] > base['FLOPs'] > 0
    assert models['finetune_tiny_motion']['Metadata']['views'] == 6  # 2 clips x 3 crops
    assert all(m['Results'] == [] and m['Weights'] is None for m in models.values())


def test_model_zoo_rejects_missing_checkpoint(tmp_path):
    main = zoo_main()
    with pytest.raises(SystemExit):
        main([TINY, '--checkpoints', f'{TINY}={tmp_path}/none.pth', '--no-speed'])


def test_model_zoo_eval_fills_top1_from_the_checkpoint(motion_data, tmp_path):
    """--checkpoints CFG=CKPT --eval: top-1 comes from Runner.test() on that
    checkpoint. The checkpoint is built so its answer is known: the head's
    weights are zero and its bias picks class 0, so every view predicts
    class 0 and top-1 is the share of class-0 clips in the test list (here
    3 of 6), and 0 on a list without class 0. A row that ignored the
    checkpoint (random head) would not give exactly 50.00 and 0.00."""
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    main = zoo_main()
    cfg_path = osp.join(ROOT, 'configs/tiny/finetune_tiny_motion.py')
    model = MODELS.build(Config.fromfile(cfg_path).model)
    with torch.no_grad():
        model.cls_head.fc_cls.weight.zero_()
        model.cls_head.fc_cls.bias.copy_(torch.nn.functional.one_hot(
            torch.tensor(0), model.cls_head.fc_cls.bias.numel()).float() * 10)
    ckpt = tmp_path / 'biased.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    lines = [line.split() for line in open(motion_data['val'])]
    zero = [f for f, label in lines if label == '0'][0]
    others = [f'{f} {label}' for f, label in lines if label != '0'][:3]
    results = {}
    for name, entries in (('half', [f'{zero} 0'] * 3 + others), ('none', others)):
        ann = tmp_path / f'{name}.txt'
        ann.write_text('\n'.join(entries) + '\n')
        md, meta = tmp_path / f'{name}.md', tmp_path / f'{name}.yml'
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            main([cfg_path, '--checkpoints', f'{cfg_path}={ckpt}', '--eval', '--no-speed',
                  '--work-dir', str(tmp_path / 'zoo'), '--out-md', str(md),
                  '--out-yaml', str(meta), '--cfg-options',
                  f'test_dataloader.dataset.ann_file={ann}',
                  f'test_dataloader.dataset.data_prefix.video={motion_data["root"]}'])
        row = [line for line in md.read_text().splitlines() if line.startswith('| [')][0]
        results[name] = (row.split('|')[8].strip(), yaml.safe_load(meta.read_text()))
    assert results['half'][0] == '50.00' and results['none'][0] == '0.00'
    model_meta = results['half'][1]['Models'][0]
    assert model_meta['Results'] == [{'Task': 'Action Recognition',
                                      'Metrics': {'Top 1 Accuracy': 50.0}}]
    assert model_meta['Weights'] == str(ckpt)


def test_attention_benchmark_ways_agree(capsys):
    """tools/benchmark_attention.py: explicit attention and query-chunked SDPA
    give SDPA's output (the tool checks before it times) and it prints a row
    per way and shape."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'benchmark_attention', osp.join(ROOT, 'tools/benchmark_attention.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    q, k, v = (torch.randn(2, 3, 24, 8) for _ in range(3))
    ref = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(mod.query_chunks(q, k, v, 4), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mod.explicit(q, k, v), ref, rtol=1e-5, atol=1e-6)
    mod.main(['--shape', '1,3,24,8', '2,2,16,8', '--chunks', '2', '5', '--iters', '1'])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(('1,', '2,'))]
    assert len(rows) == 6  # sdpa, explicit, 2 chunks per shape; 5 divides neither
