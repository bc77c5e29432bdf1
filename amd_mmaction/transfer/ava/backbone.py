"""The AMD student encoder as a detection backbone: all tokens in, the
final-normed token map ``(B, C, T', h, w)`` out.

It *is* :class:`VideoViT` (same parameter names), so AMD / VideoMAE
pre-training checkpoints load through
:func:`amd_mmaction.weights.formats.to_encoder_state` with strict key and
shape checks. Detection clips are not square (AVA tests at short side 256),
so the fixed sinusoid table, built for the pre-training grid, is resized per
temporal slot to the clip's token grid (bicubic, as mmaction2's
``VisionTransformer`` does for its AVA configs).
"""
from typing import Optional

import torch
import torch.nn.functional as F

from mmaction.registry import MODELS

from amd_mmaction.student.vit import VideoViT
from amd_mmaction.weights.formats import (load_encoder_weights, read_checkpoint,
                                   to_encoder_state)


@MODELS.register_module()
class ViTTokenMap(VideoViT):
    """VideoViT returning its token feature map.

    Args:
        pretrained: optional checkpoint (AMD/VideoMAE pre-training, an
            mmaction2 recognizer, or a state dict) whose encoder is loaded
            in :meth:`init_weights`.
        **kwargs: :class:`VideoViT` arguments; ``img_size`` is the
            pre-training size the position table refers to.
    """

    def __init__(self, pretrained: Optional[str] = None, **kwargs):
        if kwargs.get('with_cls_token'):
            raise ValueError('ViTTokenMap returns a token map; a class token '
                             'has no place in it (with_cls_token=True)')
        kwargs.setdefault('final_norm', True)
        super().__init__(**kwargs)
        self.pretrained = pretrained

    def init_weights(self):
        super().init_weights()
        if self.pretrained:
            state = to_encoder_state(read_checkpoint(self.pretrained),
                                     source=self.pretrained)
            load_encoder_weights(self, state, source=self.pretrained)

    def position_table(self, grid_h: int, grid_w: int) -> torch.Tensor:
        t, gh, gw = self.grid
        if (grid_h, grid_w) == (gh, gw):
            return self.pos_embed
        table = self.pos_embed.reshape(t, gh, gw, -1).permute(0, 3, 1, 2)
        table = F.interpolate(table, size=(grid_h, grid_w), mode='bicubic',
                              align_corners=False)
        return table.permute(0, 2, 3, 1).reshape(1, t * grid_h * grid_w, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) clip -> (B, D, T/tubelet, H/patch, W/patch)."""
        b, _, t, h, w = x.shape
        p, tub = self.patch_size, self.tubelet_size
        if t != self.grid[0] * tub:
            raise ValueError(
                f'input clip {tuple(x.shape)} does not fit the backbone: '
                f'expected {self.grid[0] * tub} frames')
        # Whole AVA frames at short side 256 are 340 or 341 wide: like
        # mmaction2's VisionTransformer (a strided conv), drop the last
        # W % patch columns (the token stride stays the patch size).
        gh, gw = h // p, w // p
        x = x[..., :gh * p, :gw * p]
        tokens = self.patch_embed(x) + self.position_table(gh, gw).to(x.dtype)
        for blk in self.blocks:
            tokens = blk(tokens)
        if self.norm is not None:
            tokens = self.norm(tokens)
        return tokens.transpose(1, 2).reshape(b, -1, self.grid[0], gh, gw)
