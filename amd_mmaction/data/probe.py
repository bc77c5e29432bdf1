"""Opening a clip without decoding it: frame count, size and codec, and the
error every bad clip is reported with (used by the list checks and the
robust data set)."""
import os
from typing import Dict, NamedTuple


class BadClipError(RuntimeError):
    """A clip that cannot be used as is; ``reason`` is one of ``missing``,
    ``unreadable``, ``no_video``, ``zero_frames``, ``short``, ``decode``."""

    def __init__(self, path: str, reason: str, detail: str = ''):
        self.path, self.reason, self.detail = path, reason, detail
        super().__init__(f'bad clip {path!r} ({reason})'
                         + (f': {detail}' if detail else ''))


class VideoInfo(NamedTuple):
    num_frames: int
    height: int
    width: int
    codec: str  # FFmpeg codec name: 'vp9', 'h264', 'mjpeg', ...


_PROBES: Dict[tuple, VideoInfo] = {}


def probe_video(path: str) -> VideoInfo:
    """Frame count, size and codec of ``path`` without decoding a frame
    (PyAV demuxes packets when the container stores no frame count, as
    WebM does). Cached per process by (path, size, mtime)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise BadClipError(path, 'missing', e.strerror) from None
    key = (path, st.st_size, st.st_mtime_ns)
    if key in _PROBES:
        return _PROBES[key]
    import av
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise BadClipError(path, 'no_video', 'no video stream')
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            height, width = stream.codec_context.height, stream.codec_context.width
            frames = stream.frames
            if frames <= 0:
                frames = sum(1 for p in container.demux(stream) if p.size)
    except BadClipError:
        raise
    except Exception as e:  # av.error.* on truncated / garbage files
        raise BadClipError(path, 'unreadable', f'{type(e).__name__}: {e}') from None
    if frames <= 0:
        raise BadClipError(path, 'zero_frames', 'the video stream has no frames')
    info = VideoInfo(int(frames), int(height), int(width), codec)
    _PROBES[key] = info
    return info


def check_length(path: str, total_frames: int, min_frames: int) -> None:
    """Raise ``BadClipError`` if a clip has no frames or fewer than the
    sampler's span."""
    if total_frames <= 0:
        raise BadClipError(path, 'zero_frames', 'the video has no frames')
    if total_frames < min_frames:
        raise BadClipError(path, 'short', f'{total_frames} frames, the clip '
                           f'sampler needs {min_frames}')
