"""What each fast-path choice buys on a real config: the plain way and
the fast way of the same piece of the step, timed alternately on the same
tensors (so both see the same machine load), scaled to one step."""
from collections import OrderedDict
from typing import Callable, Dict

import torch
import torch.nn.functional as F

from amd_mmaction.pretrain.amd import mask_indices
from amd_mmaction.student.vit import gather_tokens, sinusoid_table
from amd_mmaction.benchmark.timing import CLOCKS, saved_tensor_bytes


def paired(a: Callable, b: Callable, repeats: int = 5, clock: str = 'wall') -> Dict[str, float]:
    """Best seconds of ``a`` and ``b``, run alternately (``clock`` as in
    :func:`best_time`)."""
    now = CLOCKS[clock]
    a(), b()
    ta, tb = [], []
    for _ in range(repeats):
        for fn, ts in ((a, ta), (b, tb)):
            t0 = now()
            fn()
            ts.append(now() - t0)
    return dict(plain=min(ta), fast=min(tb))


def _conv_embed(pe, x):
    return pe.proj(x).flatten(2).transpose(1, 2)


def ablate(model, x, samples, repeats: int = 5, clock: str = 'wall'
           ) -> 'OrderedDict[str, Dict]':
    """Per optimisation: seconds per step the plain and the fast way, and
    how many times the piece runs in one step."""
    x, mask_stu = model.unpack(x, samples)
    st, dec, al, tea = model.student, model.decoder, model.aligner, model.teacher
    vis_idx = mask_indices(~mask_stu)
    mask_tea = model.stack_masks(samples, 'mask_tea', len(x), x.device)
    tea_idx = torch.cat([vis_idx, mask_indices(mask_stu & ~mask_tea)], 1)
    out = OrderedDict()

    # 1. patch embedding: Conv3d vs tubelets + one Linear (student fwd+bwd,
    #    teacher fwd).
    def embed(fn):
        def run():
            fn(st.patch_embed, x).sum().backward()
            with torch.no_grad():
                fn(tea.encoder.patch_embed, x)
        return run
    out['patch embed as Linear (not Conv3d)'] = paired(
        embed(_conv_embed), embed(lambda pe, x: pe(x)), repeats, clock)

    # 2. token selection: boolean-mask copy vs index gather (student and
    #    teacher tokens, with backward through the student's).
    tok_s = torch.randn(len(x), st.num_tokens, st.embed_dims, requires_grad=True)
    tok_t = torch.randn(len(x), st.num_tokens, tea.encoder.embed_dims)
    keep_s = ~mask_stu
    keep_t = torch.zeros_like(mask_stu).scatter_(1, tea_idx, True)

    def select_mask():
        tok_s[keep_s].view(len(x), -1, tok_s.shape[-1]).sum().backward()
        tok_t[keep_t].view(len(x), -1, tok_t.shape[-1])

    def select_gather():
        gather_tokens(tok_s, vis_idx).sum().backward()
        gather_tokens(tok_t, tea_idx)
    out['index gather (not boolean-mask copy)'] = paired(select_mask, select_gather,
                                                          repeats, clock)

    # 3. position tables: recomputed every step vs fixed buffers.
    widths = [st.embed_dims, dec.blocks[0].norm1.normalized_shape[0],
              tea.encoder.embed_dims] + [g.pos_embed.shape[-1] for g in
                                         getattr(al, 'generators', [])]

    def tables_recomputed():
        for d in widths:
            sinusoid_table(st.num_tokens, d)

    def tables_buffered():
        for m in [st, dec, tea.encoder] + list(getattr(al, 'generators', [])):
            m.pos_embed.to(x.dtype)
    out['position tables as buffers'] = paired(tables_recomputed, tables_buffered,
                                                repeats, clock)

    # 4. attention: explicit softmax(QK^T)V vs fused SDPA, at the shapes
    #    of the step (decoder and generators fwd+bwd, teacher fwd).
    def qkv(n, heads, dims, grad):
        return [torch.randn(len(x), heads, n, dims // heads, requires_grad=grad)
                for _ in range(3)]
    n_dec = st.num_tokens
    n_tea = tea_idx.shape[1]
    dec_heads = dec.blocks[0].attn.num_heads
    dec_dims = dec.blocks[0].norm1.normalized_shape[0]
    shapes = [(qkv(n_dec, dec_heads, dec_dims, True), len(dec.blocks), True),
              (qkv(n_tea, tea.encoder.num_heads, tea.encoder.embed_dims, False),
               len(tea.encoder.blocks), False)]
    if getattr(al, 'generators', None):
        g_blocks = sum(len(g.blocks) for g in al.generators)
        shapes.append((qkv(n_tea, tea.encoder.num_heads, tea.encoder.embed_dims, True),
                       g_blocks, True))

    def attention(fused):
        def run():
            for (q, k, v), times, grad in shapes:
                for _ in range(times):
                    with torch.set_grad_enabled(grad):
                        if fused:
                            o = F.scaled_dot_product_attention(q, k, v)
                        else:
                            a = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
                            o = a.softmax(-1) @ v
                        if grad:
                            o.sum().backward()
        return run
    out['SDPA (not explicit attention)'] = paired(attention(False), attention(True),
                                                   repeats, clock)

    # 5. teacher forward in fp32 vs under bf16 autocast (changes results:
    #    opt-in, FrozenTeacher(autocast='bf16')).
    def teacher(dtype):
        def run():
            old = tea.autocast_dtype
            tea.autocast_dtype = dtype
            try:
                tea(x, tea_idx)
            finally:
                tea.autocast_dtype = old
        return run
    out['teacher bf16 autocast (opt-in)'] = paired(teacher(None), teacher(torch.bfloat16),
                                                   repeats, clock)

    # 6. activation checkpointing of the student (opt-in): the whole step
    #    with and without; it trades time for the activations it frees.
    def step(ckpt):
        def run():
            st.grad_checkpointing = ckpt
            try:
                for p in model.parameters():
                    p.grad = None
                sum(model.loss(x, samples).values()).backward()
            finally:
                st.grad_checkpointing = False
        return run
    r = paired(step(False), step(True), repeats, clock)
    for ckpt, key in ((False, 'plain_saved_bytes'), (True, 'fast_saved_bytes')):
        st.grad_checkpointing = ckpt
        r[key] = saved_tensor_bytes(lambda: model.loss(x, samples))
    st.grad_checkpointing = False
    out['student activation checkpointing (opt-in)'] = r
    return out
