from .decoder import PixelDecoder
from .vit import VideoViT, gather_tokens, sincos_2d_table, sinusoid_table

__all__ = ['PixelDecoder', 'VideoViT', 'gather_tokens', 'sincos_2d_table',
           'sinusoid_table']
