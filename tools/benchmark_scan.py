"""Scan throughput (clips/s) of ``tools/data/prepare.py scan`` on generated clips.

    python tools/benchmark_scan.py [--presets ssv2 k400] [--clips 24] [--workers 1 2]

Writes real clips shaped like the data sets' (``ssv2``: VP9 .webm 428x240,
12 fps, 48 frames = 4 s, as Something-Something V2; ``k400``: H.264 .mp4
340x256, 30 fps, 300 frames = 10 s, as mmaction2's resized Kinetics;
``ucf101``: MPEG-4 part 2 .avi 320x240, 25 fps, 175 frames = 7 s), lists
them, and scans the list with 1 and 2 processes (every frame decoded with
decord, the default), from scratch each time. Prints clips/s and the time
per 10k clips, and the CPU time per clip (this process and its pool
workers), which depends much less on other load than the wall time. The
machine's load average is printed too: wall figures are only comparable on
an otherwise idle machine.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402

PRESETS = {
    'ssv2': dict(ext='webm', codec='libvpx-vp9', width=428, height=240, fps=12, frames=48),
    'k400': dict(ext='mp4', codec='libx264', width=340, height=256, fps=30, frames=300),
    'ucf101': dict(ext='avi', codec='mpeg4', width=320, height=240, fps=25, frames=175),
}


def _frames(p: dict, seed: int):
    """A textured background panning under a moving bright box, with a little
    noise: compresses like camera video, not like flat colour or pure noise."""
    rng = np.random.default_rng(seed)
    h, w = p['height'], p['width']
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    fx, fy = rng.uniform(0.02, 0.08, 2)
    base = np.stack([60 + 40 * np.sin(xx * fx + c) * np.cos(yy * fy + c) for c in (0, 1, 2)], -1)
    for i in range(p['frames']):
        shift = int(i * 2)
        img = np.roll(base, shift, axis=1)
        x = int((w - 40) * (0.5 + 0.5 * np.sin(i / 9 + seed)))
        y = int((h - 40) * (0.5 + 0.5 * np.cos(i / 11 + seed)))
        img[y:y + 40, x:x + 40] = (220, 200, 90)
        img += rng.normal(0, 3, img.shape)
        yield np.clip(img, 0, 255).astype(np.uint8)


def write_clip(path: str, p: dict, seed: int) -> None:
    import av
    with av.open(path, 'w') as c:
        s = c.add_stream(p['codec'], rate=p['fps'])
        s.width, s.height, s.pix_fmt = p['width'], p['height'], 'yuv420p'
        s.gop_size = 12
        if p['codec'] == 'libvpx-vp9':
            s.options = {'deadline': 'realtime', 'cpu-used': '8', 'crf': '32', 'b': '0'}
        elif p['codec'] == 'libx264':
            s.options = {'preset': 'veryfast', 'crf': '23'}
        else:  # MPEG-4 part 2 (Xvid / DivX, as UCF101 and HMDB51)
            s.bit_rate = 600_000
        for img in _frames(p, seed):
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format='rgb24')):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--presets', nargs='+', default=['ssv2', 'k400'], choices=sorted(PRESETS))
    ap.add_argument('--clips', type=int, default=24, help='clips per preset')
    ap.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--backend', default='decord', choices=('decord', 'dali', 'pyav'))
    ap.add_argument('--decode', default='all', choices=('all', 'open'))
    ap.add_argument('--work-dir', help='keep the clips here (default: a temporary folder)')
    ap.add_argument('--json', action='store_true', help='print the results as JSON too')
    ap.add_argument('--ava-seconds', type=int, default=0,
                    help='also time AVA frame extraction (30 fps jpgs) from a generated '
                    'H.264 640x360 30 fps video of this many seconds')
    a = ap.parse_args(argv)
    from amd_mmaction.data.prepare import scan_list

    work = a.work_dir or tempfile.mkdtemp(prefix='scan_bench_')
    results = []
    try:
        for name in a.presets:
            p = PRESETS[name]
            root = osp.join(work, name, 'videos')
            os.makedirs(root, exist_ok=True)
            t0 = time.time()
            lines = []
            for i in range(a.clips):
                rel = f'clip_{i:05d}.{p["ext"]}'
                if not osp.isfile(osp.join(root, rel)):
                    write_clip(osp.join(root, rel), p, i)
                lines.append(f'{rel} {i % 10}')
            lst = osp.join(work, name, f'{name}_list_videos.txt')
            with open(lst, 'w') as f:
                f.write('\n'.join(lines) + '\n')
            size = sum(os.path.getsize(osp.join(root, ln.split()[0])) for ln in lines)
            print(f'{name}: {a.clips} clips {p["codec"]} {p["width"]}x{p["height"]} '
                  f'{p["frames"]} frames at {p["fps"]} fps ({size / a.clips / 1e3:.0f} kB each), '
                  f'written in {time.time() - t0:.1f}s', flush=True)
            for w in a.workers:
                t0, c0 = time.time(), os.times()
                rep = scan_list(lst, root, report_dir=osp.join(work, name, f'w{w}'),
                                backend=a.backend, decode=a.decode, clip_len=16,
                                frame_interval=2, workers=w, restart=True, progress=False,
                                force=True)
                wall, c1 = time.time() - t0, os.times()
                # CPU time of this process and of the (reaped) pool workers
                cpu = sum(c1[:4]) - sum(c0[:4])
                assert rep['good'] == a.clips, rep['counts']
                rate = a.clips / wall
                cpu_clip = cpu / a.clips
                results.append(dict(preset=name, workers=w, clips=a.clips, seconds=round(wall, 2),
                                    clips_per_s=round(rate, 2),
                                    minutes_per_10k=round(1e4 / rate / 60, 1),
                                    cpu_s_per_clip=round(cpu_clip, 4),
                                    backend=a.backend, decode=a.decode, **p))
                print(f'  {w} process{"es" if w > 1 else ""}: {wall:6.2f}s  {rate:7.2f} clips/s  '
                      f'{1e4 / rate / 60:6.1f} min per 10k clips  (CPU {1e3 * cpu_clip:.0f} ms '
                      'per clip)', flush=True)
        if a.ava_seconds:
            from amd_mmaction.data.prepare.ava import extract_frames
            p = dict(ext='mp4', codec='libx264', width=640, height=360, fps=30,
                     frames=30 * a.ava_seconds)
            src = osp.join(work, 'ava', 'video.mp4')
            os.makedirs(osp.dirname(src), exist_ok=True)
            if not osp.isfile(src):
                write_clip(src, p, 0)
            t0, c0 = time.time(), os.times()
            n = extract_frames(src, osp.join(work, 'ava', 'frames'), 30, 0.0, a.ava_seconds)
            wall, cpu = time.time() - t0, sum(os.times()[:4]) - sum(c0[:4])
            results.append(dict(preset='ava_extract', frames=n, seconds=round(wall, 2),
                                frames_per_s=round(n / wall, 1),
                                cpu_ms_per_frame=round(1e3 * cpu / n, 2)))
            print(f'AVA frame extraction, 640x360 H.264 -> jpg: {n} frames in {wall:.1f}s, '
                  f'{n / wall:.0f} frames/s (CPU {1e3 * cpu / n:.1f} ms per frame); one AVA '
                  f'video (27030 frames) {27030 / (n / wall) / 60:.1f} min', flush=True)
    finally:
        if not a.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg() if hasattr(os, 'getloadavg') else None
    print(f'machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} '
          f'{load[2]:.2f}' if load else f'machine: {os.cpu_count()} CPUs')
    if a.json:
        print(json.dumps(results, indent=1))
    return results


if __name__ == '__main__':
    main()
