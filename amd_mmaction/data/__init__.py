from .robust import BadClipError, BadClipPolicy, RobustVideoDataset
from .lists import check_video_list
from .checks import DataListCheckHook
from . import dali  # noqa: F401  (registers the DALI path)
from .synthetic import CLASSES, make_motion_dataset, render_clip, write_video

__all__ = ['BadClipError', 'BadClipPolicy', 'RobustVideoDataset', 'check_video_list',
           'DataListCheckHook', 'CLASSES', 'make_motion_dataset', 'render_clip', 'write_video']
