"""Feature generator G_l (method.md §4): predicts the teacher's features at
the teacher-only (D) tokens from the projected student features."""
import torch
import torch.nn as nn

from mmaction.registry import MODELS
from amd_mmaction.student.vit import Block, gather_tokens, init_vit_weights, sinusoid_table


@MODELS.register_module()
class FeatureGenerator(nn.Module):
    """[phi(z) + PE at V, one shared learned [MASK] + PE at each D]
    -> ``depth`` blocks of the teacher's width -> last |D| outputs.
    Only |D| mask tokens are appended, never one per masked token."""

    def __init__(self, embed_dims, num_heads, depth=2, num_tokens=1568,
                 mlp_ratio=4.0, norm_eps=1e-6):
        super().__init__()
        # A registered parameter: trained and saved (the authors' was not).
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.register_buffer('pos_embed', sinusoid_table(num_tokens, embed_dims),
                             persistent=False)
        self.blocks = nn.ModuleList(
            Block(embed_dims, num_heads, mlp_ratio, 'qv', norm_eps) for _ in range(depth))
        init_vit_weights(self)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, x_vis, vis_idx, diff_idx):
        pos = self.pos_embed.to(x_vis.dtype).expand(len(x_vis), -1, -1)
        x = torch.cat([x_vis + gather_tokens(pos, vis_idx),
                       self.mask_token.to(x_vis.dtype) + gather_tokens(pos, diff_idx)], 1)
        for blk in self.blocks:
            x = blk(x)
        return x[:, x_vis.shape[1]:]
