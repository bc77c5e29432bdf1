"""Video data: list files and their checks, the robust video data set (bad-clip
policy), clip transforms, the DALI path and the demo's motion clips."""
from amd_mmaction.data.probe import BadClipError, VideoInfo, probe_video
from amd_mmaction.data.robust import BadClipPolicy, RobustVideoDataset
from amd_mmaction.data.lists import check_video_list
from amd_mmaction.data import dali, transforms  # noqa: F401  (registers the DALI path)
from amd_mmaction.data.synthetic import CLASSES, make_motion_dataset, render_clip, write_video

__all__ = ['BadClipError', 'BadClipPolicy', 'CLASSES', 'RobustVideoDataset', 'VideoInfo',
           'check_video_list', 'make_motion_dataset', 'probe_video', 'render_clip', 'write_video']
