"""A small labeled motion data set written as real video files.

Each clip shows a textured shape moving over a textured background; the
label is the direction of motion (or growing / shrinking), so a single
frame cannot tell the class: temporal order decides it, as in
Something-Something. Files are encoded with PyAV and read back through the
real decoders (decord, DALI). Output follows mmaction2's VideoDataset
format: ``<split>.txt`` lines ``<relative path> <label>``.
"""
import json
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np

from amd_mmaction import compat

CLASSES = ('moving right', 'moving left', 'moving down', 'moving up',
           'growing', 'shrinking')
# container extension -> (PyAV codec, pixel format)
CODECS = {
    'webm': ('libvpx-vp9', 'yuv420p'),   # SSV2's format; DALI CPU decodes it
    'mp4': ('libx264', 'yuv420p'),       # Kinetics' format; DALI needs NVDEC
    'avi': ('mjpeg', 'yuvj420p'),
}


def render_clip(label: int, num_frames: int, size: int,
                rng: np.random.Generator) -> np.ndarray:
    """(num_frames, size, size, 3) uint8 RGB frames of one sample."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    bg_color = rng.uniform(20, 110, size=3)
    freq = rng.uniform(0.1, 0.4, size=2)
    texture = 25 * np.sin(xx * freq[0] + rng.uniform(0, 6)) * np.cos(yy * freq[1])
    background = np.clip(bg_color[None, None] + texture[..., None], 0, 255)
    fg_color = rng.uniform(150, 255, size=3)
    shape = rng.integers(0, 3)  # square, disc, diamond
    r0 = size * rng.uniform(0.12, 0.2)
    margin = size * 0.22
    start = rng.uniform(margin, size - margin, size=2)  # (x, y)
    travel = size * rng.uniform(0.35, 0.5)
    direction = {0: (1, 0), 1: (-1, 0), 2: (0, 1), 3: (0, -1)}.get(label, (0, 0))
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for i in range(num_frames):
        s = i / max(num_frames - 1, 1) - 0.5  # -0.5 .. 0.5
        cx = start[0] + direction[0] * travel * s
        cy = start[1] + direction[1] * travel * s
        r = r0
        if label == 4:
            r = r0 * (0.5 + 1.2 * (s + 0.5))
        elif label == 5:
            r = r0 * (1.7 - 1.2 * (s + 0.5))
        dx, dy = xx - cx, yy - cy
        if shape == 0:
            inside = np.maximum(abs(dx), abs(dy)) <= r
        elif shape == 1:
            inside = dx ** 2 + dy ** 2 <= r ** 2
        else:
            inside = abs(dx) + abs(dy) <= 1.3 * r
        frame = background.copy()
        frame[inside] = fg_color
        frames[i] = frame.astype(np.uint8)
    return frames


def write_video(path: str, frames: np.ndarray, fps: int = 12, gop: int = 8) -> None:
    """Encode RGB frames to ``path``; codec chosen by the extension."""
    import av
    ext = path.rsplit('.', 1)[-1]
    if ext not in CODECS:
        raise ValueError(f'unsupported video extension {ext!r} for {path}; '
                         f'choose one of {sorted(CODECS)}')
    codec, pix_fmt = CODECS[ext]
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with av.open(path, mode='w') as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.gop_size = gop  # short GOPs: cheap random access
        if codec == 'libvpx-vp9':
            stream.options = {'deadline': 'realtime', 'cpu-used': '8', 'crf': '20', 'b': '0'}
        elif codec == 'libx264':
            stream.options = {'preset': 'ultrafast', 'crf': '18'}
        try:
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        except av.error.ArgumentError as err:
            if codec == 'libvpx-vp9' and compat.DECORD_BEFORE_AV:
                raise RuntimeError(
                    f'cannot encode {path}: PyAV\'s VP9 encoder does not open ({err}). In this '
                    'process decord was imported before PyAV, and the FFmpeg libraries bundled '
                    'with decord break PyAV\'s libvpx. Import amd_mmaction (or av) before '
                    'decord, or write the videos in a separate process.') from err
            raise


def make_motion_dataset(root: str, num_train: int = 120, num_val: int = 48,
                        num_frames: int = 24, size: int = 64, ext: str = 'webm',
                        seed: int = 0, classes: Sequence[str] = CLASSES) -> Dict[str, str]:
    """Write ``train``/``val`` splits (balanced labels) under ``root``.

    Returns {'root', 'train', 'val', 'classes'}: the video folder, the two
    annotation files and a JSON list of class names.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    out = {'root': osp.join(root, 'videos')}
    for split, count in (('train', num_train), ('val', num_val)):
        lines = []
        for i in range(count):
            label = i % len(classes)
            rel = f'{split}/{split}_{i:05d}.{ext}'
            write_video(osp.join(out['root'], rel),
                        render_clip(label, num_frames, size, rng))
            lines.append(f'{rel} {label}')
        ann = osp.join(root, f'{split}.txt')
        with open(ann, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        out[split] = ann
    out['classes'] = osp.join(root, 'classes.json')
    with open(out['classes'], 'w') as f:
        json.dump(list(classes), f)
    return out
