"""Analytical parameter and FLOP counts per component of an AMD step.

Conventions (docs/speed.md):
- a matmul (B, M, K) x (K, N) costs 2*M*N*K FLOPs; the patch-embed Conv3d
  is the matmul it is (tokens x (C*t*p*p) x D) and runs on *all* tokens
  (the encoder embeds the whole clip, then gathers the visible tokens);
- attention costs QK^T plus AV: 2 * 2 * n^2 * D per layer;
- norms, GELU, softmax, adds, gathers and losses are not counted;
- backward = 2 x forward for every trained component (the usual
  fwd+bwd = 3 x fwd rule); the teacher runs forward only.

With these rules the ViT-S / ViT-B-teacher step (16x224, taps [6, 12],
masks 90%/75%) costs 75.95 GFLOPs of teacher forward and 141.47 GFLOPs
of student + decoder + generators forward+backward per clip, the figures
of issue 7; the alignment projections add 0.57 GFLOPs.
"""
from collections import OrderedDict
from typing import Dict, Optional

from amd_mmaction.masks.tube import check_mask_config

COMPONENTS = ('teacher', 'encoder', 'decoder', 'generators', 'projections')


def block_flops(n: int, dims: int, mlp_ratio: float = 4.0) -> int:
    """One pre-norm transformer block on n tokens: qkv, proj, 2 MLP
    matmuls and the two attention matmuls."""
    hidden = int(dims * mlp_ratio)
    linear = 2 * n * dims * (3 * dims + dims) + 2 * 2 * n * dims * hidden
    attention = 2 * 2 * n * n * dims
    return linear + attention


def _mlp_ratio(block) -> float:
    return block.mlp.fc1.out_features / block.mlp.fc1.in_features


def encoder_flops(vit, n_tokens: int, depth: Optional[int] = None) -> int:
    """VideoViT forward on n_tokens kept tokens, ``depth`` blocks (all
    built blocks by default); the patch embedding runs on every token."""
    blocks = list(vit.blocks)[:depth]
    conv = vit.patch_embed.proj
    k = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1] * conv.kernel_size[2]
    flops = 2 * vit.num_tokens * k * vit.embed_dims
    n = n_tokens + (1 if vit.cls_token is not None else 0)
    flops += sum(block_flops(n, vit.embed_dims, _mlp_ratio(b)) for b in blocks)
    return flops


def decoder_flops(dec, n_vis: int, n_masked: int) -> int:
    proj = dec.encoder_to_decoder
    dims = proj.out_features
    flops = 2 * n_vis * proj.in_features * dims
    flops += sum(block_flops(n_vis + n_masked, dims, _mlp_ratio(b)) for b in dec.blocks)
    flops += 2 * n_masked * dims * dec.head.out_features  # head on masked tokens only
    return flops


def token_counts(grid, student_ratio: float, teacher_ratio: Optional[float],
                 mode: str = 'asymmetric') -> Dict[str, int]:
    """Tokens of one clip: N total, V student-visible, M student-masked,
    D teacher-only (student-masked, teacher-visible)."""
    cells, n_stu, n_tea = check_mask_config(grid, mode, student_ratio, teacher_ratio)
    t = int(grid[0])
    return dict(N=t * cells, V=t * (cells - n_stu), M=t * n_stu, D=t * (n_stu - n_tea))


def amd_flops(model, counts: Dict[str, int]) -> 'OrderedDict[str, Dict[str, int]]':
    """FLOPs per clip of each component of ``AMDPretrainer`` ``model``:
    {component: dict(fwd=, bwd=)}; components absent from the model (the
    teacher side of plain VideoMAE) are left out."""
    V, M, D = counts['V'], counts['M'], counts['D']
    out = OrderedDict()
    teacher = model.teacher
    aligner = model.aligner

    def trained(fwd):
        return dict(fwd=fwd, bwd=2 * fwd)

    if teacher is not None:
        out['teacher'] = dict(fwd=encoder_flops(teacher.encoder, V + D), bwd=0)
    out['encoder'] = trained(encoder_flops(model.student, V))
    out['decoder'] = trained(decoder_flops(model.decoder, V, M))
    if aligner is not None:
        if aligner.use_generation:
            out['generators'] = trained(sum(
                sum(block_flops(V + D, b.attn.proj.in_features, _mlp_ratio(b))
                    for b in g.blocks) for g in aligner.generators))
        direct, gen = aligner.projection_uses()
        out['projections'] = trained(sum(  # each (projection, layer) runs once
            2 * V * p.in_features * p.out_features for p, _ in dict.fromkeys(direct + gen)))
    return out


def param_counts(model) -> 'OrderedDict[str, int]':
    """Parameters per component (the teacher counted as built: blocks
    past its deepest tap are dropped)."""
    def n(m):
        return sum(p.numel() for p in m.parameters())

    out = OrderedDict(encoder=n(model.student), decoder=n(model.decoder))
    if model.aligner is not None:
        a = model.aligner
        out['generators'] = n(a.generators) if a.use_generation else 0
        out['projections'] = n(a.projections) + (
            n(a.generator_projections) if a.manner == 'parallel' else 0)
    if model.teacher is not None:
        out['teacher'] = n(model.teacher)
    return out
