"""Scan every clip of an mmaction2 video list before anyone trains on it.

Each listed clip is opened and decoded, frame by frame, with the backend
the config will use (decord; DALI where installed, routed as the project's
DALI path routes it: VP8/VP9/MJPEG on DALI's CPU decoder, NVDEC on a GPU,
other codecs on CPU to decord; or PyAV), and its frame count is checked
against the sampler's span (``(clip_len - 1) * frame_interval + 1`` frames
for ``SampleFrames``, ``clip_len`` for ``UniformSample``).

Reasons a line is bad (``REASONS``): ``bad_line`` (mmaction2 would misread
it), ``duplicate`` (the clip is listed again), ``missing``, ``empty`` (0
bytes), ``unreadable`` (no decoder opens it / no video stream),
``undecodable`` (decoding fails part-way), ``truncated`` (far fewer frames
decode than the header promises), ``short`` (fewer frames than the span).

Written next to the list (or in ``report_dir``):

* ``<list>_scan_report.json``: settings, counts, every bad line with its
  list line number, text, reason and detail, histograms (codec,
  resolution, fps, duration, frames, decoder);
* ``<list>_scan_report.md``: the same, readable;
* ``<list>_clean.txt``: the list without its bad lines (never replaced by
  different content without ``force``);
* ``<list>_scan_state.jsonl``: one line per finished clip, appended and
  fsynced as the scan goes: a rerun skips clips already scanned (same
  size and mtime, same backend), so an interrupted scan resumes.

Clips are scanned in ``workers`` processes (fork), with a progress bar
and ETA on stderr.
"""
import json
import multiprocessing as mp
import os
import os.path as osp
import sys
import time
from collections import Counter, OrderedDict
from typing import Dict, List, Optional, Tuple

from amd_mmaction.data.prepare.common import (Interrupted, PrepareError, Outputs, Progress, atomic_write, check_out_dir,
                     fmt_seconds, ignore_sigint, list_text, require_file)

REASONS = ('bad_line', 'duplicate', 'missing', 'empty', 'unreadable', 'undecodable',
           'truncated', 'short')
BACKENDS = ('decord', 'dali', 'pyav')
SAMPLERS = ('SampleFrames', 'UniformSample', 'UniformSampleFrames', 'DenseSampleFrames')
# DALI's decoders: CPU variant (fn.decoders.video, device='cpu') and NVDEC
# (device='mixed'); the CPU set is taken from amd_mmaction.data.dali when
# the DALI backend is chosen.
DEFAULT_CPU_CODECS = frozenset({'vp8', 'vp9', 'mjpeg'})
GPU_EXTRA_CODECS = frozenset({'h264', 'hevc', 'av1', 'mpeg4'})
NVDEC_MIN_SIZE = 128
STATE_VERSION = 1


# ------------------------------------------------------------------ span

def span_frames(sampler: str, clip_len: int, frame_interval: int = 1) -> int:
    """Frames a clip sampler needs from one video (as the project's bad-clip
    policy counts them)."""
    clip_len, frame_interval = int(clip_len), int(frame_interval)
    if clip_len < 1 or frame_interval < 1:
        raise PrepareError(f'clip_len {clip_len} and frame_interval {frame_interval} must be >= 1')
    if sampler in ('SampleFrames', 'DenseSampleFrames'):
        return (clip_len - 1) * frame_interval + 1
    return clip_len


def settings_from_config(config: str, split: str = 'train') -> dict:
    """What a scan needs from an mmengine config: the ``<split>_dataloader``
    data set's list (``ann_file``), video folder (``data_prefix.video``),
    list delimiter, backend (DecordInit -> decord, PyAVInit -> pyav,
    DALIVideoDataset / ProbeVideo -> dali), sampler and its ``clip_len``,
    ``frame_interval``, ``num_clips``, and the data set's ``on_bad_clip``.
    Relative paths are relative to the working directory, as in training."""
    require_file(config, 'config')
    try:
        from mmengine.config import Config
        cfg = Config.fromfile(config)
    except Exception as err:  # a config that does not parse is the user's
        raise PrepareError(f'{config}: cannot load the config ({type(err).__name__}: '
                           f'{err})') from None
    key = f'{split}_dataloader'
    loader = cfg.get(key)
    if not loader or 'dataset' not in loader:
        raise PrepareError(f'{config}: no {key}.dataset (choose --split train, val or test)')
    ds = loader['dataset']
    while 'dataset' in ds and 'ann_file' not in ds:  # RepeatDataset and the like
        ds = ds['dataset']
    if 'datasets' in ds:
        raise PrepareError(f'{config}: {key}.dataset is a {ds.get("type")} of several lists; '
                           'scan each list with --list / --video-root')
    ann_file = ds.get('ann_file')
    if not ann_file:
        raise PrepareError(f'{config}: {key}.dataset has no ann_file')
    prefix = (ds.get('data_prefix') or {}).get('video') or ''
    data_root = ds.get('data_root')
    if data_root and not osp.isabs(ann_file):
        ann_file = osp.join(data_root, ann_file)
    if data_root and prefix and not osp.isabs(prefix):
        prefix = osp.join(data_root, prefix)
    pipeline = list(ds.get('pipeline') or [])
    types = [t.get('type') for t in pipeline if isinstance(t, dict)]
    backend = None
    if ds.get('type') == 'DALIVideoDataset' or 'ProbeVideo' in types:
        backend = 'dali'
    elif 'DecordInit' in types:
        backend = 'decord'
    elif 'PyAVInit' in types:
        backend = 'pyav'
    elif any(t in types for t in ('OpenCVInit', 'RawFrameDecode')):
        raise PrepareError(f'{config}: the {key} pipeline reads with '
                           f'{[t for t in types if t in ("OpenCVInit", "RawFrameDecode")][0]}, '
                           'which the scan does not emulate; pass --backend decord or pyav')
    sampler = next((t for t in pipeline if isinstance(t, dict) and t.get('type') in SAMPLERS),
                   None)
    if sampler is None:
        raise PrepareError(f'{config}: the {key} pipeline has no frame sampler '
                           f'({", ".join(SAMPLERS)}); pass --clip-len / --frame-interval')
    return dict(config=config, split=split, list=ann_file, video_root=prefix,
                delimiter=ds.get('delimiter', ' '), backend=backend or 'decord',
                sampler=sampler['type'], clip_len=int(sampler.get('clip_len', 1)),
                frame_interval=int(sampler.get('frame_interval', 1)),
                num_clips=int(sampler.get('num_clips', 1)),
                on_bad_clip=ds.get('on_bad_clip'), dataset_type=ds.get('type'))


# ------------------------------------------------------------------ the list

def read_list(path: str, delimiter: str = ' ') -> Tuple[List[dict], int]:
    """Entries ``{line, text, rel, reason, detail}`` of every non-empty list
    line: ``reason`` is ``bad_line`` for a line mmaction2 would misread,
    ``duplicate`` for a clip listed again, else None."""
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b'\n') + 1
        raise PrepareError(f'{path}:{line}: the list is not UTF-8 text') from None
    entries, first = [], {}
    for lineno, line in enumerate(text.split('\n'), start=1):
        line = line.rstrip('\r')
        stripped = line.strip()
        if not stripped:
            continue
        e = dict(line=lineno, text=stripped, rel=None, reason=None, detail='')
        entries.append(e)
        if delimiter != '\t' and '\t' in stripped:
            e.update(reason='bad_line', detail='tab-separated: mmaction2 splits on '
                     f'{delimiter!r} and would read one unlabeled path')
            continue
        fields = stripped.split(delimiter)
        if '' in fields:
            e.update(reason='bad_line', detail=f'empty field (several {delimiter!r} in a row)')
            continue
        labels = fields[1:]
        bad = [v for v in labels if not (v.isdigit() or (v.startswith('-') and v[1:].isdigit()))]
        if bad:
            e.update(reason='bad_line', detail=f'label {bad[0]!r} is not an integer'
                     + (' (a path with spaces cannot be listed)' if delimiter == ' ' else ''))
            continue
        e['rel'] = fields[0]
        key = osp.normpath(fields[0])
        if key in first:
            e.update(reason='duplicate', detail=f'also listed at line {first[key]}')
            continue
        first[key] = lineno
    return entries, len(entries)


# ------------------------------------------------------------------ worker

_SETTINGS: dict = {}
_DALI = {}


class _Quiet:
    """Send this process's fd 2 (FFmpeg / decord chatter) to /dev/null while
    a clip is decoded, so the progress bar stays readable."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        if self.enabled:
            sys.stderr.flush()
            self.saved = os.dup(2)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
        return self

    def __exit__(self, *exc):
        if self.enabled:
            os.dup2(self.saved, 2)
            os.close(self.saved)
        return False


def _init_worker(settings: dict, quiet_fd2: bool = True) -> None:
    _SETTINGS.clear()
    _SETTINGS.update(settings)
    import av  # noqa: F401  (PyAV before decord: decord's FFmpeg breaks PyAV's VP9)
    if quiet_fd2:  # a pool worker: silence FFmpeg for good, Ctrl-C is the parent's
        ignore_sigint()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)


def _probe(path: str) -> dict:
    """Codec, size, fps, duration and header frame count (PyAV, no decode)."""
    import av
    with av.open(path) as c:
        if not c.streams.video:
            raise ValueError('no video stream')
        s = c.streams.video[0]
        cc = s.codec_context
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else None
        duration = None
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
        elif c.duration is not None:
            duration = c.duration / 1e6
        return dict(codec=cc.name, width=int(cc.width), height=int(cc.height),
                    fps=round(fps, 3) if fps else None,
                    duration=round(duration, 3) if duration else None,
                    header_frames=int(s.frames) if s.frames else None)


def _count_packets(path: str) -> int:
    import av
    with av.open(path) as c:
        s = c.streams.video[0]
        return sum(1 for p in c.demux(s) if p.size)


def _decode_decord(path: str, decode: str) -> int:
    import decord
    vr = decord.VideoReader(path, num_threads=1)
    n = len(vr)
    if decode == 'all':
        for i in range(n):
            try:
                vr.next()
            except StopIteration:
                raise RuntimeError(f'decord reports {n} frames but stops after {i}') from None
            except Exception as err:
                raise _DecodeError(f'decord fails at frame {i} of {n}: {_short(err)}') from None
    return n


def _decode_pyav(path: str, decode: str) -> int:
    import av
    with av.open(path) as c:
        s = c.streams.video[0]
        if decode != 'all':
            return int(s.frames) if s.frames else _count_packets(path)
        k = 0
        try:
            for _ in c.decode(s):
                k += 1
        except Exception as err:
            raise _DecodeError(f'PyAV fails after {k} frames: {_short(err)}') from None
        return k


def _dali_pipe(device: str):
    key = device
    if key not in _DALI:
        from nvidia.dali import fn, pipeline_def, types

        @pipeline_def(batch_size=1, num_threads=1, device_id=None if device == 'cpu' else 0,
                      exec_async=False, exec_pipelined=False, prefetch_queue_depth=1)
        def pipe():
            encoded = fn.external_source(name='encoded', dtype=types.UINT8, ndim=1)
            return fn.decoders.video(encoded, device='cpu' if device == 'cpu' else 'mixed')

        p = pipe()
        p.build()
        _DALI[key] = p
    return _DALI[key]


def _decode_dali(path: str, device: str) -> int:
    import numpy as np
    pipe = _dali_pipe(device)
    try:
        pipe.feed_input('encoded', [np.fromfile(path, dtype=np.uint8)])
        out, = pipe.run()
        return int(out.shape()[0][0])
    except Exception as err:
        _DALI.pop(device, None)  # a failed run can leave the pipeline unusable
        msg = str(err)
        if 'encountered:' in msg:
            msg = msg.split('encountered:', 1)[1]
        raise _DecodeError(f'DALI {device}: {" ".join(msg.split())[:300]}') from None


class _DecodeError(Exception):
    pass


def _short(err: Exception, n: int = 240) -> str:
    text = ' '.join(str(err).split())
    if '/github/workspace/' in text:  # decord's C++ location noise
        text = text.split(': ', 2)[-1] if text.count(': ') >= 2 else text
    return f'{type(err).__name__}: {text[:n]}'


def _route(info: dict, settings: dict) -> str:
    """Which decoder the project's DALI path would use for this clip."""
    codec = info.get('codec')
    cpu = settings.get('cpu_codecs') or DEFAULT_CPU_CODECS
    if settings.get('dali_device') == 'gpu':
        small = min(info.get('width') or NVDEC_MIN_SIZE,
                    info.get('height') or NVDEC_MIN_SIZE) < NVDEC_MIN_SIZE
        if codec in (set(cpu) | GPU_EXTRA_CODECS) and not small:
            return 'dali-gpu'
    return 'dali-cpu' if codec in cpu else 'decord'


def scan_clip(task: Tuple[str, str], settings: Optional[dict] = None) -> dict:
    """Scan one clip: ``task`` is (relative path, absolute path). Returns a
    record with ``reason`` (None when good) and what was learned."""
    settings = settings or _SETTINGS
    rel, path = task
    t0 = time.monotonic()
    rec = dict(rel=rel, reason=None, detail='', codec=None, width=None, height=None, fps=None,
               duration=None, frames=None, decoder=None, size=None, mtime_ns=None)
    try:
        st = os.stat(path)
    except OSError as err:
        rec.update(reason='missing', detail=f'{path!r}: {err.strerror}')
        return rec
    rec.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
    if not osp.isfile(path):
        rec.update(reason='unreadable', detail=f'{path!r} is not a file')
        return rec
    if st.st_size == 0:
        rec.update(reason='empty', detail=f'{path!r} is a 0-byte file')
        return rec
    backend, decode = settings['backend'], settings['decode']
    with _Quiet(settings.get('quiet_inline', False)):
        probe_err = None
        try:
            rec.update(_probe(path))
        except Exception as err:
            probe_err = _short(err)
        header = rec.pop('header_frames', None)
        decoder = backend
        if backend == 'dali':
            decoder = _route(rec, settings) if probe_err is None else 'decord'
        rec['decoder'] = decoder
        try:
            if decoder == 'decord':
                n = _decode_decord(path, decode)
            elif decoder == 'pyav':
                n = _decode_pyav(path, decode)
            elif decode == 'all':
                n = _decode_dali(path, 'gpu' if decoder == 'dali-gpu' else 'cpu')
            else:  # DALI path, open only: the project's ProbeVideo count
                n = header or _count_packets(path)
        except _DecodeError as err:
            rec.update(reason='undecodable', detail=str(err))
            return rec
        except Exception as err:
            # the container and stream headers read (PyAV) but the decoder
            # cannot start: the data is cut or corrupt
            why = _short(err)
            rec.update(reason='unreadable' if probe_err else 'undecodable',
                       detail=f'{decoder}: {why}' + (f'; PyAV: {probe_err}' if probe_err else
                                                     ' (the headers read)'))
            return rec
    rec['frames'] = int(n)
    if n <= 0:
        rec.update(reason='unreadable', detail=f'{decoder} finds no frames')
        return rec
    expected = header
    if not expected and rec.get('duration') and rec.get('fps'):
        expected = int(rec['duration'] * rec['fps'] + 0.5)
    if expected and n < 0.8 * expected and expected - n >= 2:
        rec.update(reason='truncated', detail=f'{n} frames decode, the header promises '
                   f'{expected} ({rec.get("duration")} s at {rec.get("fps")} fps)')
    rec['seconds'] = round(time.monotonic() - t0, 4)
    return rec


def _scan_task(task):
    try:
        return scan_clip(task)
    except Exception as err:  # never let one clip end the pool
        return dict(rel=task[0], reason='unreadable', detail=f'scan error {_short(err)}')


# ------------------------------------------------------------------ state

def _state_path(report_dir: str, stem: str) -> str:
    return osp.join(report_dir, f'{stem}_scan_state.jsonl')


def load_state(path: str, fingerprint: dict) -> Tuple[Dict[str, dict], str]:
    """Records of a previous scan with the same fingerprint (else none)."""
    if not osp.isfile(path):
        return {}, 'new'
    records: Dict[str, dict] = {}
    with open(path, 'rb') as f:
        lines = f.read().decode('utf-8', 'replace').split('\n')
    try:
        head = json.loads(lines[0])
    except (json.JSONDecodeError, IndexError):
        return {}, 'unreadable state, started over'
    if head.get('state') != STATE_VERSION or head.get('fingerprint') != fingerprint:
        return {}, 'state of other settings, started over'
    for line in lines[1:]:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a killed run can be cut
        if isinstance(rec, dict) and 'rel' in rec:
            records[rec['rel']] = rec
    return records, 'resumed'


class StateWriter:
    """Appends records, flushed at once and fsynced at least once a second."""

    def __init__(self, path: str, fingerprint: dict, fresh: bool):
        os.makedirs(osp.dirname(path) or '.', exist_ok=True)
        if fresh:
            atomic_write(path, json.dumps(dict(state=STATE_VERSION, fingerprint=fingerprint))
                         + '\n')
        cut = False
        with open(path, 'rb') as f:  # a killed run can leave a cut last line
            if f.seek(0, os.SEEK_END) > 0:
                f.seek(-1, os.SEEK_END)
                cut = f.read(1) != b'\n'
        self.f = open(path, 'a', encoding='utf-8')
        if cut:
            self.f.write('\n')
        self.last_sync = time.monotonic()

    def add(self, rec: dict) -> None:
        self.f.write(json.dumps(rec, ensure_ascii=False) + '\n')
        self.f.flush()
        if time.monotonic() - self.last_sync > 1.0:
            os.fsync(self.f.fileno())
            self.last_sync = time.monotonic()

    def close(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()


# ------------------------------------------------------------------ report

DURATION_BINS = (1, 2, 4, 6, 10, 15, 20, 30, 60, 300)
FRAME_BINS = (8, 16, 32, 48, 64, 100, 150, 300, 600, 1200)


def _bin(value: Optional[float], edges) -> str:
    if value is None:
        return 'unknown'
    lo = 0
    for hi in edges:
        if value < hi:
            return f'{lo}-{hi}'
        lo = hi
    return f'>={edges[-1]}'


def _hist(values, order=None) -> 'OrderedDict[str, int]':
    c = Counter(values)
    if order is not None:
        keys = [k for k in order if k in c] + sorted(k for k in c if k not in order)
    else:
        keys = sorted(c, key=lambda k: (-c[k], k))
    return OrderedDict((k, c[k]) for k in keys)


def histograms(records: List[dict]) -> dict:
    def bins(edges):
        out, lo = [], 0
        for hi in edges:
            out.append(f'{lo}-{hi}')
            lo = hi
        return out + [f'>={edges[-1]}', 'unknown']

    return OrderedDict(
        codec=_hist(r.get('codec') or 'unknown' for r in records),
        resolution=_hist(f'{r["width"]}x{r["height"]}' if r.get('width') else 'unknown'
                         for r in records),
        fps=_hist(('%g' % r['fps']) if r.get('fps') else 'unknown' for r in records),
        duration_s=_hist((_bin(r.get('duration'), DURATION_BINS) for r in records),
                         bins(DURATION_BINS)),
        frames=_hist((_bin(r.get('frames'), FRAME_BINS) for r in records), bins(FRAME_BINS)),
        decoder=_hist(r.get('decoder') or 'unknown' for r in records))


def _markdown(report: dict) -> str:
    s = report['settings']
    lines = [f'# Scan of `{report["list"]}`', '',
             f'- video root: `{report["video_root"]}`',
             f'- backend: {s["backend"]}' + (f' (DALI device {s["dali_device"]})'
                                             if s['backend'] == 'dali' else '')
             + f', decode: {s["decode"]}',
             f'- sampler: {s["sampler"]} clip_len={s["clip_len"]} frame_interval='
             f'{s["frame_interval"]} num_clips={s["num_clips"]} -> needs {s["min_frames"]} frames'
             + (' (short clips kept in the cleaned list)' if s['keep_short'] else ''),
             f'- config: `{s["config"]}` ({s["split"]})' if s.get('config') else '- config: none',
             f'- lines: {report["lines"]}, good: {report["good"]}, bad: {report["bad"]}'
             + (f', kept short: {report["kept_short"]}' if report.get('kept_short') else ''),
             f'- scanned now: {report["scanned"]}, from the resume state: {report["resumed"]}, '
             f'workers: {s["workers"]}, {report["elapsed_s"]} s'
             + (f' ({report["clips_per_s"]} clips/s)' if report.get('clips_per_s') else ''),
             f'- cleaned list: `{report["clean_list"]}`', '', '## Bad lines by reason', '']
    if not report['bad']:
        lines.append('none')
    else:
        lines += ['| reason | lines |', '|---|---|']
        lines += [f'| {k} | {v} |' for k, v in report['counts'].items()]
        for reason, items in report['bad_lines'].items():
            lines += ['', f'### {reason} ({len(items)})', '']
            for it in items:
                lines.append(f'- line {it["line"]}: `{it["text"]}`: {it["detail"]}')
    lines += ['', '## Histograms (every clip that opened, bad ones included)', '']
    for name, hist in report['histograms'].items():
        total = sum(hist.values()) or 1
        lines += [f'### {name}', '', '```']
        width = max((len(k) for k in hist), default=1)
        for k, v in hist.items():
            lines.append(f'{k:>{width}} {v:7d} {"#" * max(1, round(40 * v / total)) if v else ""}')
        lines += ['```', '']
    return '\n'.join(lines) + '\n'


# ------------------------------------------------------------------ driver

def _dali_settings(device: str) -> Tuple[str, frozenset]:
    from amd_mmaction.data.dali import CPU_CODECS, DALIMissing, require_dali
    try:
        require_dali('the scan with --backend dali')
    except DALIMissing as err:
        raise PrepareError(str(err)) from None
    if device == 'auto':
        device = 'gpu' if osp.exists('/dev/nvidiactl') or osp.exists('/dev/nvidia0') else 'cpu'
    return device, frozenset(CPU_CODECS)


def scan_list(list_file: str, video_root: str = '', report_dir: Optional[str] = None,
              backend: str = 'decord', decode: str = 'all', sampler: str = 'SampleFrames',
              clip_len: int = 16, frame_interval: int = 2, num_clips: int = 1,
              workers: int = 1, keep_short: bool = False, force: bool = False,
              restart: bool = False, progress: bool = True, dali_device: str = 'auto',
              delimiter: str = ' ', config: Optional[str] = None, split: Optional[str] = None,
              stream=None) -> dict:
    """Scan the clips of ``list_file`` (paths relative to ``video_root``);
    write the report, the cleaned list and the resume state (see the module
    doc). Returns the report (a dict) with the paths written."""
    if backend not in BACKENDS:
        raise PrepareError(f'backend {backend!r}: expected one of {", ".join(BACKENDS)}')
    if decode not in ('all', 'open'):
        raise PrepareError(f"decode {decode!r}: expected 'all' or 'open'")
    require_file(list_file, 'video list')
    if video_root and not osp.isdir(video_root):
        raise PrepareError(f'video folder {video_root!r} does not exist')
    workers = max(1, int(workers))
    min_frames = span_frames(sampler, clip_len, frame_interval)
    stem = osp.splitext(osp.basename(list_file))[0]
    report_dir = report_dir or osp.dirname(osp.abspath(list_file))
    try:
        check_out_dir(report_dir, [video_root] if video_root else [])
    except PrepareError as err:
        raise PrepareError(f'{err}; pass --report-dir (report_dir) outside it') from None
    paths = dict(json=osp.join(report_dir, f'{stem}_scan_report.json'),
                 md=osp.join(report_dir, f'{stem}_scan_report.md'),
                 clean=osp.join(report_dir, f'{stem}_clean.txt'),
                 state=_state_path(report_dir, stem))
    if osp.abspath(paths['clean']) == osp.abspath(list_file):
        raise PrepareError(f'the cleaned list would replace the list itself ({list_file!r})')
    cpu_codecs = DEFAULT_CPU_CODECS
    if backend == 'dali':
        dali_device, cpu_codecs = _dali_settings(dali_device)
    else:
        dali_device = None
    settings = dict(backend=backend, decode=decode, dali_device=dali_device,
                    cpu_codecs=sorted(cpu_codecs))
    fingerprint = dict(settings, video_root=osp.abspath(video_root or '.'))

    entries, _ = read_list(list_file, delimiter)
    if not entries:
        raise PrepareError(f'{list_file}: the list is empty; expected "<relative path> <label>" '
                           'lines')
    # clips to scan: first listing of each path; resume from the state
    todo: List[Tuple[str, str]] = []
    done: Dict[str, dict] = {}
    previous, how = ({}, 'restart') if restart else load_state(paths['state'], fingerprint)
    for e in entries:
        if e['reason'] is not None:
            continue
        rel = e['rel']
        path = osp.join(video_root, rel) if video_root else rel
        old = previous.get(rel)
        if old is not None:
            try:
                st = os.stat(path)
                same = (old.get('size'), old.get('mtime_ns')) == (st.st_size, st.st_mtime_ns)
            except OSError:
                same = old.get('reason') == 'missing'
            if same:
                done[rel] = old
                continue
        todo.append((rel, path))
    os.makedirs(report_dir, exist_ok=True)
    writer = StateWriter(paths['state'], fingerprint, fresh=(how != 'resumed'))
    resumed = len(done)
    bar = Progress(len(todo) + resumed, label=f'scan {stem}', stream=stream, enabled=progress,
                   done=resumed)
    t0 = time.monotonic()
    interrupted = False
    try:
        if workers == 1 or len(todo) <= 1:
            _init_worker(settings, quiet_fd2=False)
            inline = dict(settings, quiet_inline=True)
            for task in todo:
                try:
                    rec = scan_clip(task, inline)
                except Exception as err:
                    rec = dict(rel=task[0], reason='unreadable', detail=f'scan error {_short(err)}')
                done[rec['rel']] = rec
                writer.add(rec)
                bar.update()
        else:
            method = 'fork' if 'fork' in mp.get_all_start_methods() else 'spawn'
            ctx = mp.get_context(method)
            with ctx.Pool(workers, initializer=_init_worker, initargs=(settings,)) as pool:
                for rec in pool.imap_unordered(_scan_task, todo, chunksize=2):
                    done[rec['rel']] = rec
                    writer.add(rec)
                    bar.update()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        writer.close()
        bar.close()
    elapsed = time.monotonic() - t0
    if interrupted:
        raise Interrupted(f'interrupted after {len(done)} of {len(todo) + resumed} clips; '
                           f'the finished ones are kept in {paths["state"]}: run the same '
                           'command again to resume')

    # verdict per line
    bad_lines: Dict[str, List[dict]] = OrderedDict((r, []) for r in REASONS)
    clean, kept_short = [], 0
    for e in entries:
        reason, detail = e['reason'], e['detail']
        rec = done.get(e['rel']) if reason is None else None
        if rec is not None:
            reason, detail = rec.get('reason'), rec.get('detail', '')
            if reason is None and rec.get('frames') is not None and rec['frames'] < min_frames:
                reason = 'short'
                detail = (f'{rec["frames"]} frames, {sampler}(clip_len={clip_len}'
                          + (f', frame_interval={frame_interval}'
                             if sampler in ('SampleFrames', 'DenseSampleFrames') else '')
                          + f') needs {min_frames}')
        if reason is None or (reason == 'short' and keep_short):
            clean.append(e['text'])
            kept_short += reason == 'short'
        if reason is not None:
            bad_lines[reason].append(dict(line=e['line'], text=e['text'], detail=detail))
    bad_lines = OrderedDict((k, v) for k, v in bad_lines.items() if v)
    opened = [done[r] for r in dict.fromkeys(e['rel'] for e in entries if e['reason'] is None)
              if r in done and (done[r].get('codec') or done[r].get('frames'))]
    scanned = len(todo)
    report = OrderedDict(
        list=osp.abspath(list_file), video_root=osp.abspath(video_root or '.'),
        settings=dict(backend=backend, decode=decode, dali_device=dali_device, sampler=sampler,
                      clip_len=int(clip_len), frame_interval=int(frame_interval),
                      num_clips=int(num_clips), min_frames=min_frames, keep_short=keep_short,
                      workers=workers, config=config, split=split),
        lines=len(entries), good=len(clean) - kept_short,
        bad=sum(len(v) for v in bad_lines.values()), kept_short=kept_short,
        counts=OrderedDict((k, len(v)) for k, v in bad_lines.items()),
        scanned=scanned, resumed=resumed, elapsed_s=round(elapsed, 2),
        clips_per_s=round(scanned / elapsed, 2) if scanned and elapsed > 0 else None,
        clean_list=paths['clean'], bad_lines=bad_lines, histograms=histograms(opened),
        state=paths['state'], report_md=paths['md'], report_json=paths['json'],
        resume=how)
    outputs = Outputs()
    outputs.add(paths['clean'], list_text(clean))
    outputs.commit(force)
    atomic_write(paths['json'], json.dumps(report, indent=1, ensure_ascii=False) + '\n')
    atomic_write(paths['md'], _markdown(report))
    return report


def summary_line(report: dict) -> str:
    counts = ', '.join(f'{k} {v}' for k, v in report['counts'].items()) or 'none'
    rate = f', {report["clips_per_s"]} clips/s' if report.get('clips_per_s') else ''
    return (f'{report["list"]}: {report["lines"]} lines, {report["good"]} good, '
            f'{report["bad"]} bad ({counts}); scanned {report["scanned"]} in '
            f'{fmt_seconds(report["elapsed_s"])}{rate}, {report["resumed"]} from the resume '
            f'state; report {report["report_md"]}; cleaned list {report["clean_list"]}')
