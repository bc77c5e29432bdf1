"""Image (ImageMAE) setting: an image is a one-frame clip through the video
model; this package adds the image data path, the 2-D decoder table, export
to mmaction2's VisionTransformer (the freeze hook for linear probing is
:class:`amd_mmaction.engine.FreezeModulesHook`)."""
from amd_mmaction.transfer.image.dataset import ImageListDataset
from amd_mmaction.transfer.image.decoder import ImagePixelDecoder
from amd_mmaction.transfer.image.export import export_image_student, to_mmaction_vit, vit_backbone_cfg
from amd_mmaction.transfer.image.synthetic import SHAPES, make_shape_dataset, render_shape

__all__ = ['ImageListDataset', 'ImagePixelDecoder', 'SHAPES',
           'export_image_student', 'make_shape_dataset', 'render_shape',
           'to_mmaction_vit', 'vit_backbone_cfg']
