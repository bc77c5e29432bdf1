"""The student's pixel decoder (method.md §2)."""
import torch
import torch.nn as nn

from mmaction.registry import MODELS
from amd_mmaction.student.vit import Block, gather_tokens, init_vit_weights, sinusoid_table


@MODELS.register_module()
class PixelDecoder(nn.Module):
    """Linear (no bias) to decoder width, [visible | one [MASK] per masked
    position] + fixed positions, ``depth`` blocks, norm, Linear to pixels;
    returns predictions for the masked tokens only, in the order given."""

    def __init__(self, in_dims, embed_dims=192, depth=4, num_heads=3,
                 num_tokens=1568, out_dims=1536, mlp_ratio=4.0, norm_eps=1e-6):
        super().__init__()
        self.encoder_to_decoder = nn.Linear(in_dims, embed_dims, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.register_buffer('pos_embed', sinusoid_table(num_tokens, embed_dims),
                             persistent=False)
        self.blocks = nn.ModuleList(
            Block(embed_dims, num_heads, mlp_ratio, 'qv', norm_eps) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.head = nn.Linear(embed_dims, out_dims)
        init_vit_weights(self)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, latent, vis_idx, mask_idx):
        x = self.encoder_to_decoder(latent)
        pos = self.pos_embed.to(x.dtype).expand(len(x), -1, -1)
        vis = x + gather_tokens(pos, vis_idx)
        masked = self.mask_token.to(x.dtype) + gather_tokens(pos, mask_idx)
        x = torch.cat([vis, masked], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x[:, vis_idx.shape[1]:]))
