"""The image student's pixel decoder: :class:`PixelDecoder` with MAE's
fixed 2-D sin-cos position table instead of VideoMAE's 1-D raster table."""
import math

from mmaction.registry import MODELS
from amd_mmaction.student.decoder import PixelDecoder
from amd_mmaction.student.vit import sincos_2d_table


@MODELS.register_module()
class ImagePixelDecoder(PixelDecoder):
    """Same blocks and head as :class:`PixelDecoder`; positions are MAE's
    2-D table over a square ``sqrt(num_tokens)`` grid (one image)."""

    def __init__(self, in_dims, embed_dims=192, depth=4, num_heads=3,
                 num_tokens=196, out_dims=768, **kwargs):
        side = math.isqrt(num_tokens)
        if side * side != num_tokens:
            raise ValueError(f'ImagePixelDecoder needs a square token grid, got '
                             f'{num_tokens} tokens')
        super().__init__(in_dims, embed_dims, depth, num_heads, num_tokens,
                         out_dims, **kwargs)
        self.pos_embed = sincos_2d_table(side, side, embed_dims)
