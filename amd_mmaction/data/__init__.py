from .robust import BadClipError, BadClipPolicy, RobustVideoDataset
from . import dali  # noqa: F401  (registers the DALI path)
from .synthetic import CLASSES, make_motion_dataset, render_clip, write_video

__all__ = ['BadClipError', 'BadClipPolicy', 'RobustVideoDataset',
           'CLASSES', 'make_motion_dataset', 'render_clip', 'write_video']
