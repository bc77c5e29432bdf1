"""Plain ViT over tubelet tokens: the student, the teacher and the image
model are all this one class (an image is a 1-frame clip, tubelet 1).

Names follow the official VideoMAE/MAE checkpoints (``patch_embed.proj``,
``attn.q_bias``, ``mlp.fc1``) so that weights load without renaming.
"""
from typing import Dict, Iterable, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch.utils.checkpoint import checkpoint

from mmaction.registry import MODELS


def sinusoid_table(num_tokens: int, dims: int) -> torch.Tensor:
    """VideoMAE's fixed 1-D table, (1, num_tokens, dims): sin on even
    channels, cos on odd ones, frequency 10000^(2*(j//2)/dims)."""
    pos = torch.arange(num_tokens, dtype=torch.float64)[:, None]
    j = torch.arange(dims, dtype=torch.float64)[None]
    angle = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode='floor') / dims)
    table = torch.empty(num_tokens, dims, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float()[None]


def sincos_2d_table(grid_h: int, grid_w: int, dims: int) -> torch.Tensor:
    """MAE's fixed 2-D table, (1, H*W, dims): half the channels encode the
    row, half the column, each as [sin | cos] with frequency 10000^(k/(D/4))."""
    if dims % 4:
        raise ValueError(f'2-D sin-cos table needs dims % 4 == 0, got {dims}')

    def one_axis(pos, d):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1).double()[:, None] * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    gw, gh = torch.meshgrid(torch.arange(grid_w), torch.arange(grid_h),
                            indexing='xy')
    # MAE encodes w-major grid[0] with the first half (rows of the meshgrid).
    emb = torch.cat([one_axis(gw, dims // 2), one_axis(gh, dims // 2)], dim=1)
    return emb.float()[None]


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (B, N, C), idx (B, K) -> (B, K, C)."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class PatchEmbed(nn.Module):
    def __init__(self, in_channels, embed_dims, patch_size, tubelet_size):
        super().__init__()
        k = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_channels, embed_dims, kernel_size=k, stride=k)

    def forward(self, x):  # (B, C, T, H, W) -> (B, N, D)
        # The stride-equals-kernel Conv3d as the matmul it is: cut tubelets
        # (raster order, values ordered like the conv weight (c, t, p, q)),
        # then one Linear. Same weights and result as self.proj(x); about
        # 3x faster forward+backward on CPU (docs/speed.md).
        B, C, T, H, W = x.shape
        t, p, q = self.proj.kernel_size
        x = x.reshape(B, C, T // t, t, H // p, p, W // q, q)
        x = x.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(B, -1, C * t * p * q)
        return F.linear(x, self.proj.weight.flatten(1), self.proj.bias)


class Attention(nn.Module):
    """Multi-head self attention; ``qkv_bias='qv'`` is VideoMAE's q/v bias
    with no k bias, ``'qkv'`` the plain biased Linear (MAE), None no bias."""

    def __init__(self, dims, num_heads, qkv_bias='qv'):
        super().__init__()
        if dims % num_heads:
            raise ValueError(f'embed_dims {dims} not divisible by num_heads {num_heads}')
        if qkv_bias not in ('qv', 'qkv', None):
            raise ValueError(f"qkv_bias must be 'qv', 'qkv' or None, got {qkv_bias!r}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dims, dims * 3, bias=qkv_bias == 'qkv')
        if qkv_bias == 'qv':
            self.q_bias = nn.Parameter(torch.zeros(dims))
            self.v_bias = nn.Parameter(torch.zeros(dims))
        else:
            self.q_bias = self.v_bias = None
        self.proj = nn.Linear(dims, dims)

    def forward(self, x):
        B, N, C = x.shape
        bias = self.qkv.bias
        if self.q_bias is not None:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias)
        q, k, v = qkv.view(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dims, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dims, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dims)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class Block(nn.Module):
    def __init__(self, dims, num_heads, mlp_ratio=4.0, qkv_bias='qv',
                 norm_eps=1e-6, drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dims, eps=norm_eps)
        self.attn = Attention(dims, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dims, eps=norm_eps)
        self.mlp = Mlp(dims, int(dims * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def init_vit_weights(module: nn.Module):
    """Xavier-uniform Linear, zero bias, unit LayerNorm (VideoMAE's init)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@MODELS.register_module()
class VideoViT(BaseModule):
    """ViT encoder on tubelet tokens that runs on any subset of its tokens.

    Args:
        embed_dims, depth, num_heads, mlp_ratio: transformer size.
        img_size, patch_size, num_frames, tubelet_size: token grid
            ``(num_frames/tubelet, img/patch, img/patch)``; an image model is
            ``num_frames=1, tubelet_size=1``.
        qkv_bias: ``'qv'`` (VideoMAE), ``'qkv'`` (MAE) or None.
        pos_embed: ``'sincos1d'`` (VideoMAE, over raster tokens) or
            ``'sincos2d'`` (MAE images). Fixed, a non-persistent buffer.
        with_cls_token: MAE's class token (teachers loaded from MAE); it is
            attended to but never returned among token features.
        final_norm: build the final LayerNorm (students); teachers return raw
            block outputs and need none.
        drop_path_rate: stochastic depth (0 in pre-training).
        grad_checkpointing: recompute each block in backward instead of
            keeping its activations (less memory, about 1/3 more compute).
        compile: ``torch.compile`` each block (True, or a dict of
            torch.compile kwargs); weights and state dict are unchanged.
    """

    def __init__(self, embed_dims=768, depth=12, num_heads=12, mlp_ratio=4.0,
                 img_size=224, patch_size=16, num_frames=16, tubelet_size=2,
                 in_channels=3, qkv_bias='qv', norm_eps=1e-6,
                 pos_embed='sincos1d', with_cls_token=False, final_norm=True,
                 drop_path_rate=0.0, init_cfg=None, grad_checkpointing=False,
                 compile=False):
        super().__init__(init_cfg=init_cfg)
        for name, size, div in (('img_size', img_size, patch_size),
                                ('num_frames', num_frames, tubelet_size)):
            if size % div:
                raise ValueError(
                    f'{name}={size} is not divisible by '
                    f'{"patch_size" if name == "img_size" else "tubelet_size"}={div}')
        self.embed_dims = embed_dims
        self.depth = depth
        self.num_heads = num_heads
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.grid = (num_frames // tubelet_size, img_size // patch_size,
                     img_size // patch_size)
        self.num_tokens = self.grid[0] * self.grid[1] * self.grid[2]
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size, tubelet_size)
        if pos_embed == 'sincos1d':
            table = sinusoid_table(self.num_tokens, embed_dims)
        elif pos_embed == 'sincos2d':
            if self.grid[0] != 1:
                raise ValueError("pos_embed='sincos2d' is for images (1 temporal slot)")
            table = sincos_2d_table(self.grid[1], self.grid[2], embed_dims)
        else:
            raise ValueError(f"pos_embed must be 'sincos1d' or 'sincos2d', got {pos_embed!r}")
        self.register_buffer('pos_embed', table, persistent=False)
        self.cls_token = (nn.Parameter(torch.zeros(1, 1, embed_dims))
                          if with_cls_token else None)
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]
        self.blocks = nn.ModuleList(
            Block(embed_dims, num_heads, mlp_ratio, qkv_bias, norm_eps, dpr[i])
            for i in range(depth))
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps) if final_norm else None
        init_vit_weights(self)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=0.02)
        self.grad_checkpointing = grad_checkpointing
        if compile:
            for blk in self.blocks:
                blk.compile(**(compile if isinstance(compile, dict) else {}))

    def _run_block(self, blk, tokens):
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(blk, tokens, use_reentrant=False)
        return blk(tokens)

    def check_taps(self, taps: Iterable[int], who: str = 'encoder') -> Tuple[int, ...]:
        taps = tuple(sorted(int(t) for t in taps))
        bad = [t for t in taps if not 1 <= t <= self.depth]
        if bad:
            raise ValueError(f'{who} feature taps {bad} are outside layers 1..{self.depth}')
        return taps

    def forward(self, x: torch.Tensor, token_idx: Optional[torch.Tensor] = None,
                taps: Sequence[int] = (), final: bool = True
                ) -> Tuple[Optional[torch.Tensor], Dict[int, torch.Tensor]]:
        """Encode the tokens ``token_idx`` (B, K) of clips ``x`` (B, C, T, H, W)
        (all tokens if None).

        Returns (final-normed tokens or None, {layer: raw block output}).
        Layers are 1-based; with ``final=False`` the loop stops after the
        deepest tap.
        """
        if x.shape[-3:] != (self.grid[0] * self.tubelet_size,
                            self.grid[1] * self.patch_size,
                            self.grid[2] * self.patch_size):
            raise ValueError(
                f'input clip {tuple(x.shape)} does not match the model grid: '
                f'expected (B, C, {self.grid[0] * self.tubelet_size}, '
                f'{self.grid[1] * self.patch_size}, {self.grid[2] * self.patch_size})')
        tokens = self.patch_embed(x) + self.pos_embed.to(x.dtype)
        if token_idx is not None:
            tokens = gather_tokens(tokens, token_idx)
        n_cls = 0
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], 1)
            n_cls = 1
        last = max(taps) if (taps and not final) else self.depth
        feats = {}
        for i, blk in enumerate(self.blocks[:last], start=1):
            tokens = self._run_block(blk, tokens)
            if i in taps:
                feats[i] = tokens[:, n_cls:]
        out = None
        if final:
            out = tokens[:, n_cls:]
            if self.norm is not None:
                out = self.norm(out)
        return out, feats
