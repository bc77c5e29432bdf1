"""Image (ImageMAE) setting: an image is a one-frame clip through the video
model; this package adds the image data path, the 2-D decoder table, export
to mmaction2's VisionTransformer and a freeze hook for linear probing."""
from .dataset import ImageListDataset
from .decoder import ImagePixelDecoder
from .export import export_image_student, to_mmaction_vit, vit_backbone_cfg
from .hooks import FreezeModulesHook
from .synthetic import SHAPES, make_shape_dataset, render_shape

__all__ = ['FreezeModulesHook', 'ImageListDataset', 'ImagePixelDecoder', 'SHAPES',
           'export_image_student', 'make_shape_dataset', 'render_shape',
           'to_mmaction_vit', 'vit_backbone_cfg']
