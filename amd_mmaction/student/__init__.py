from amd_mmaction.student.decoder import PixelDecoder
from amd_mmaction.student.vit import VideoViT, gather_tokens, sincos_2d_table, sinusoid_table

__all__ = ['PixelDecoder', 'VideoViT', 'gather_tokens', 'sincos_2d_table',
           'sinusoid_table']
