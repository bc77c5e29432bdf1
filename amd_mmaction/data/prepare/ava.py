"""AVA v2.x from the official files, in mmaction2's raw-frame layout.

Official files (``ava_v2.2.zip`` and the video list):

* ``ava_{train,val}_v2.2.csv``: ``video_id,timestamp,x1,y1,x2,y2,action_id,
  person_id`` (no header; boxes normalised to [0, 1]; keyframes every
  second, 902..1798);
* ``ava_action_list_v2.2.pbtxt`` (80 actions, ``label { name: "..."
  label_id: N label_type: ... }``) and
  ``ava_action_list_v2.2_for_activitynet_2019.pbtxt`` (the 60 evaluated);
* ``ava_{train,val}_excluded_timestamps_v2.2.csv`` (``video_id,timestamp``);
* ``ava_file_names_trainval_v2.1.txt`` (``<video_id>.<ext>``, one a line);
* optionally mmaction2's person proposals
  ``ava_dense_proposals_{train,val}.FAIR.recall_93.9.pkl``.

The project's AVA configs (``configs/ava/_ava_v2.2_data.py``) read raw
frames, as mmaction2's ``tools/data/ava`` prepares them: a video's seconds
``timestamp_start`` (900) .. ``timestamp_end`` + 1 (1801) as
``rawframes/<video_id>/img_00001.jpg ...`` at ``fps`` (30), frame 1 at
second 900. So this builder

1. checks the csv files (8 numeric columns, boxes in [0, 1], timestamps in
   range, every action id in the label map; ids outside the 60 evaluated
   ones are counted), the excluded-timestamp and label-map files (in the
   exact form mmaction2's readers parse: a pbtxt indented otherwise is
   rewritten with two-space indents);
2. copies them to ``<out>/annotations/`` under the names the configs read
   (rows of videos that are missing left out unless ``keep_missing``);
3. extracts the frames in parallel processes, resumably: a video whose
   ``.done`` file (written last) matches the settings is skipped; a cut
   short run redoes only the videos it had not finished. Videos already
   cut to 15 minutes (mmaction2's ``cut_videos.sh``) are recognised by
   their length and read from second 0.
"""
import json
import multiprocessing as mp
import os
import os.path as osp
import re
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

from amd_mmaction.data.prepare.common import (Interrupted, PrepareError, Outputs, Problems, Progress, atomic_write,
                     check_out_dir, find_first, finish, ignore_sigint, index_videos, list_text,
                     read_text, require_dir, require_file, text_lines)

DONE_FILE = '.done'
FRAME_TMPL = 'img_{:05d}.jpg'


def ann_names(version: str = '2.2') -> dict:
    v = version
    return dict(
        train=f'ava_train_v{v}.csv', val=f'ava_val_v{v}.csv',
        exclude_train=f'ava_train_excluded_timestamps_v{v}.csv',
        exclude_val=f'ava_val_excluded_timestamps_v{v}.csv',
        label_map=f'ava_action_list_v{v}.pbtxt',
        label_map_eval=(f'ava_action_list_v{v}_for_activitynet_2019.pbtxt' if v == '2.2'
                        else f'ava_action_list_v{v}_for_activitynet_2018.pbtxt'),
        proposals_train='ava_dense_proposals_train.FAIR.recall_93.9.pkl',
        proposals_val='ava_dense_proposals_val.FAIR.recall_93.9.pkl',
        file_names='ava_file_names_trainval_v2.1.txt')


# ------------------------------------------------------------------ label map

_FIELD = re.compile(r'^\s*(name|label_id|id|label_type)\s*:\s*(.+?)\s*$')


def read_pbtxt(path: str) -> Tuple[List[dict], bool]:
    """``([{id, name, type}], mmaction2_reads_it)`` of an AVA label map.
    ``mmaction2_reads_it`` is False when mmaction2's ``read_labelmap``
    (lines starting with exactly two spaces) would miss some entries."""
    items, cur, strict = [], None, []
    for lineno, raw in enumerate(read_text(path, 'AVA label map').split('\n'), start=1):
        line = raw.strip()
        if not line:
            continue
        if re.match(r'^(label|item)\s*\{$', line):
            if cur is not None:
                raise PrepareError(f'{path}:{lineno}: a new entry starts before "}}" closes '
                                   'the previous one')
            cur = dict(line=lineno)
            continue
        if line == '}':
            if cur is None or 'id' not in cur or 'name' not in cur:
                raise PrepareError(f'{path}:{lineno}: entry without name and label_id; expected '
                                   'label { name: "..." label_id: N label_type: ... }')
            items.append(cur)
            cur = None
            continue
        m = _FIELD.match(raw)
        if cur is None or not m:
            raise PrepareError(f'{path}:{lineno}: {line!r}; expected label {{ name: "..." '
                               'label_id: N label_type: ... }')
        key, value = m.groups()
        if key == 'name':
            if not (value.startswith('"') and value.endswith('"')):
                raise PrepareError(f'{path}:{lineno}: name {value} is not quoted')
            cur['name'] = value[1:-1]
            if raw.startswith('  name:'):
                strict.append(('name', lineno))
        elif key in ('label_id', 'id'):
            if not value.isdigit():
                raise PrepareError(f'{path}:{lineno}: {key} {value!r} is not an integer')
            cur['id'] = int(value)
            if raw.startswith(f'  {key}:'):
                strict.append(('id', lineno))
        else:
            cur['type'] = value
    if cur is not None:
        raise PrepareError(f'{path}: the last entry is not closed with "}}"')
    if not items:
        raise PrepareError(f'{path}: no label entries; expected label {{ name: "..." label_id: '
                           'N label_type: ... }')
    ids = Counter(it['id'] for it in items)
    dup = [i for i, n in ids.items() if n > 1]
    if dup:
        raise PrepareError(f'{path}: label ids listed twice: {sorted(dup)[:5]}')
    n_strict = sum(1 for k, _ in strict if k == 'id')
    return items, n_strict == len(items)


def pbtxt_text(items: List[dict]) -> str:
    """The label map in the official layout (two-space indents)."""
    out = []
    for it in items:
        out += ['label {', f'  name: "{it["name"]}"', f'  label_id: {it["id"]}']
        if it.get('type'):
            out.append(f'  label_type: {it["type"]}')
        out.append('}')
    return '\n'.join(out) + '\n'


# ------------------------------------------------------------------ csv files

def read_ava_csv(path: str, split: str, action_ids: set, ts_range: Tuple[int, int],
                 problems: Problems) -> List[dict]:
    """Rows ``{video, ts, action, text, where}``; bad rows go to problems."""
    rows = []
    first = True
    lo, hi = ts_range
    for lineno, text in text_lines(path, f'AVA {split} csv'):
        where = f'{path}:{lineno}'
        f = [x.strip() for x in text.split(',')]
        if first:
            first = False
            if len(f) >= 2 and not re.fullmatch(r'-?\d+', f[1]) and f[1].lower() in (
                    'timestamp', 'time', 'middle_frame_timestamp', 'frame_timestamp'):
                problems.add('header_dropped', where, f'header {text!r} dropped (mmaction2 '
                             'reads every line as a row)', split=split)
                continue
        if len(f) not in (7, 8):
            problems.add('malformed', where, f'{len(f)} fields in {text!r}; expected video_id,'
                         'timestamp,x1,y1,x2,y2,action_id,person_id', split=split)
            continue
        try:
            ts = int(f[1])
            box = [float(v) for v in f[2:6]]
            action = int(f[6])
            if len(f) == 8:
                int(f[7])
        except ValueError:
            problems.add('malformed', where, f'{text!r}: timestamp, action_id and person_id must '
                         'be integers, the box four numbers', split=split)
            continue
        if len(f) == 7:
            problems.add('malformed', where, f'{text!r} has no person_id (AVA v2.1+ rows have '
                         '8 fields; mmaction2 reads the 8th)', split=split)
            continue
        if not (lo <= ts <= hi):
            problems.add('bad_timestamp', where, f'timestamp {ts} is outside {lo}..{hi} '
                         '(timestamp_start..timestamp_end)', split=split)
            continue
        x1, y1, x2, y2 = box
        if not all(0.0 <= v <= 1.0 for v in box) or x1 > x2 or y1 > y2:
            problems.add('bad_box', where, f'box {box} is not x1<=x2, y1<=y2 within [0, 1] '
                         '(normalised)', split=split)
            continue
        if action not in action_ids:
            problems.add('unknown_label', where, f'action_id {action} is not in the label map '
                         f'({len(action_ids)} actions)', split=split)
            continue
        rows.append(dict(video=f[0], ts=ts, action=action, text=','.join(f), where=where))
    return rows


def read_excluded(path: str, problems: Problems, split: str) -> List[Tuple[str, int, str]]:
    out = []
    for lineno, text in text_lines(path, 'AVA excluded timestamps'):
        f = [x.strip() for x in text.split(',')]
        if len(f) != 2 or not f[1].isdigit():
            problems.add('malformed', f'{path}:{lineno}', f'{text!r}; expected '
                         '"video_id,timestamp"', split=split)
            continue
        out.append((f[0], int(f[1]), f'{f[0]},{f[1]}'))
    return out


def read_file_names(path: str) -> Dict[str, str]:
    names = {}
    for _, text in text_lines(path, 'AVA file-name list'):
        stem = osp.splitext(text)[0]
        names[stem] = text
    return names


# ------------------------------------------------------------------ frames

def _writer():
    try:
        import cv2

        def write(path, frame, quality):
            cv2.imwrite(path, frame.to_ndarray(format='bgr24'),
                        [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    except ImportError:  # Pillow
        def write(path, frame, quality):
            frame.to_image().save(path, quality=int(quality))
    return write


def video_span(path: str) -> Tuple[float, float]:
    """(first timestamp, end time) of the video stream in seconds."""
    import av
    with av.open(path) as c:
        s = c.streams.video[0]
        start = float(s.start_time * s.time_base) if s.start_time is not None else 0.0
        if s.duration is not None:
            dur = float(s.duration * s.time_base)
        elif c.duration is not None:
            dur = c.duration / 1e6
        else:
            dur = float('inf')
        return start, start + dur


def extract_frames(video: str, dst: str, fps: int, t0: float, seconds: float,
                   quality: int = 95) -> int:
    """Write frames at ``t0 + k / fps`` (k = 0 .. seconds * fps - 1) as
    ``dst/img_{k+1:05d}.jpg``, each the decoded frame nearest in time
    (duplicated or dropped as ffmpeg's ``-r`` does). Returns how many were
    written (fewer when the video ends first)."""
    import av
    write = _writer()
    n_target = int(round(seconds * fps))
    os.makedirs(dst, exist_ok=True)
    k = 0
    with av.open(video) as c:
        s = c.streams.video[0]
        s.thread_type = 'AUTO'
        if t0 > 1:
            c.seek(int((t0 - 1) / s.time_base), stream=s, backward=True)
        prev = prev_t = None
        for frame in c.decode(s):
            t = frame.time
            if t is None:
                continue
            if prev is not None:
                mid = (prev_t + t) / 2
                while k < n_target and t0 + k / fps < mid:
                    write(osp.join(dst, FRAME_TMPL.format(k + 1)), prev, quality)
                    k += 1
            prev, prev_t = frame, t
            if k >= n_target:
                break
        if prev is not None and k < n_target:
            rate = s.average_rate or s.guessed_rate
            last = prev_t + (1.0 / float(rate) if rate else 1.0 / fps)
            while k < n_target and t0 + k / fps < last:
                write(osp.join(dst, FRAME_TMPL.format(k + 1)), prev, quality)
                k += 1
    return k


def _extract_one(task: dict) -> dict:
    """Extract one video unless its done-file matches (worker)."""
    dst, params = task['dst'], task['params']
    done_path = osp.join(dst, DONE_FILE)
    if osp.isfile(done_path):
        try:
            with open(done_path) as f:
                done = json.load(f)
            if done.get('params') == params:
                return dict(task['info'], status='done before', frames=done['frames'],
                            t0=done.get('t0'))
        except (OSError, ValueError, KeyError):
            pass
    try:
        start, end = video_span(task['src'])
        t0 = float(params['start'])
        offset = params['video_offset']
        if offset == 'auto':
            # a 15-minute cut (mmaction2's cut_videos.sh) ends long before the
            # middle of the annotated range: its second 0 is second `start`
            if end < params['start'] + (params['end'] - params['start']) / 2:
                t0 = 0.0
        else:
            t0 = float(params['start']) - float(offset)
        if osp.isfile(done_path):
            os.unlink(done_path)
        n = extract_frames(task['src'], dst, params['fps'], t0, params['seconds'],
                           params['quality'])
    except Exception as err:
        return dict(task['info'], status='failed', error=f'{type(err).__name__}: '
                    f'{" ".join(str(err).split())[:300]}', frames=0)
    # frames left from an earlier run with other settings
    for name in os.listdir(dst):
        m = re.fullmatch(r'img_(\d{5,})\.jpg', name)
        if m and int(m.group(1)) > n:
            os.unlink(osp.join(dst, name))
    atomic_write(done_path, json.dumps(dict(params=params, frames=n, t0=t0,
                                            video_span=[start, end])) + '\n')
    return dict(task['info'], status='extracted', frames=n, t0=t0)


def _init_extract_worker():
    import av  # noqa: F401
    ignore_sigint()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)


def count_frames(folder: str) -> int:
    if not osp.isdir(folder):
        return 0
    return sum(1 for n in os.listdir(folder) if re.fullmatch(r'img_\d{5,}\.jpg', n))


# ------------------------------------------------------------------ driver

def prepare_ava(ann_dir: str, out_dir: str, video_dir: Optional[str] = None,
                splits: Sequence[str] = ('train', 'val'), version: str = '2.2', fps: int = 30,
                timestamp_start: int = 900, timestamp_end: int = 1800,
                video_offset: str = 'auto', quality: int = 95, workers: int = 1,
                extract: bool = True, force: bool = False, skip_bad: bool = False,
                keep_missing: bool = False, progress: bool = True, stream=None) -> dict:
    """Check and copy the AVA annotations to ``<out>/annotations`` and
    extract ``<out>/rawframes`` (see the module doc). ``extract=False``
    only checks that frame folders already there cover every video."""
    names = ann_names(version)
    video_dir = video_dir or osp.join(out_dir, 'videos')
    require_dir(ann_dir, 'AVA annotation folder')
    splits = [s for s in splits]
    for s in splits:
        if s not in ('train', 'val'):
            raise PrepareError(f'AVA split {s!r}: expected train or val')
    paths = {s: require_file(osp.join(ann_dir, names[s]), f'AVA {s} csv') for s in splits}
    excl = {s: find_first(ann_dir, [names[f'exclude_{s}']]) for s in splits}
    full_map = require_file(osp.join(ann_dir, names['label_map']), 'AVA label map')
    eval_map = find_first(ann_dir, [names['label_map_eval']])
    file_list = find_first(ann_dir, [names['file_names']])
    frames_root = osp.join(out_dir, 'rawframes')
    anno_out = osp.join(out_dir, 'annotations')
    out_dir = check_out_dir(out_dir, [video_dir])
    if extract:
        require_dir(video_dir or '', 'AVA video folder')
    problems = Problems(skip_bad)
    items, strict_ok = read_pbtxt(full_map)
    action_ids = {it['id'] for it in items}
    eval_ids, eval_items, eval_strict = None, None, True
    if eval_map:
        eval_items, eval_strict = read_pbtxt(eval_map)
        eval_ids = {it['id'] for it in eval_items}
        extra = sorted(eval_ids - action_ids)
        if extra:
            raise PrepareError(f'{eval_map}: action ids {extra[:5]} are not in {full_map}')
    else:
        problems.add('no_eval_label_map', ann_dir, f'{names["label_map_eval"]} not found: the '
                     'configs evaluate with it (label_file)')
    rows = {s: read_ava_csv(paths[s], s, action_ids, (timestamp_start, timestamp_end), problems)
            for s in splits}
    excluded = {s: (read_excluded(excl[s], problems, s) if excl[s] else None) for s in splits}
    problems.raise_if_fatal()
    for s in splits:
        if excluded[s] is None:
            problems.add('no_excluded_file', ann_dir, f'{names[f"exclude_{s}"]} not found; an '
                         'empty one is written', split=s)
            continue
        ex = {(v, t) for v, t, _ in excluded[s]}
        hit = sum(1 for r in rows[s] if (r['video'], r['ts']) in ex)
        if hit:
            problems.add('excluded_annotated', paths[s], f'{hit} rows are at excluded '
                         'timestamps (AVADataset drops them)', split=s)
        if eval_ids is not None:
            off = sum(1 for r in rows[s] if r['action'] not in eval_ids)
            if off:
                problems.add('not_evaluated', paths[s], f'{off} rows have actions outside the '
                             f'{len(eval_ids)} evaluated ones ({names["label_map_eval"]})', split=s)
    # videos
    videos = sorted({r['video'] for s in splits for r in rows[s]})
    by_name = read_file_names(file_list) if file_list else {}
    index = index_videos(video_dir) if video_dir and osp.isdir(video_dir) else {}
    src_of, missing = {}, set()
    for v in videos:
        rel = None
        if v in by_name and video_dir and osp.isfile(osp.join(video_dir, by_name[v])):
            rel = by_name[v]
        elif index.get(v):
            rel = index[v][0]
        if rel is None and extract:
            missing.add(v)
            first = next(r for s in splits for r in rows[s] if r['video'] == v)
            problems.add('missing', first['where'], f'no video file for {v!r} in {video_dir!r}'
                         + (f' (expected {by_name[v]})' if v in by_name else ''),
                         split='', expected=by_name.get(v, v), label='')
        elif rel is not None:
            src_of[v] = osp.join(video_dir, rel)
    # annotation copies
    outputs = Outputs()
    counts = {}
    for s in splits:
        kept = [r for r in rows[s] if keep_missing or r['video'] not in missing]
        outputs.add(osp.join(anno_out, names[s]), list_text(r['text'] for r in kept))
        ex_lines = [t for _, _, t in excluded[s]] if excluded[s] else []
        outputs.add(osp.join(anno_out, names[f'exclude_{s}']), list_text(ex_lines))
        counts[s] = dict(rows=len(rows[s]), rows_written=len(kept),
                         videos=len({r['video'] for r in rows[s]}),
                         keyframes=len({(r['video'], r['ts']) for r in kept}))
    for key, path, its, ok in (('label_map', full_map, items, strict_ok),
                               ('label_map_eval', eval_map, eval_items, eval_strict)):
        if not path:
            continue
        if ok:
            outputs.add_copy(osp.join(anno_out, names[key]), path)
        else:
            problems.add('label_map_rewritten', path, "indented otherwise than mmaction2's "
                         'read_labelmap reads (two spaces); written with two-space indents')
            outputs.add(osp.join(anno_out, names[key]), pbtxt_text(its))
    for s in splits:
        prop = find_first(ann_dir, [names[f'proposals_{s}']])
        if prop:
            outputs.add_copy(osp.join(anno_out, names[f'proposals_{s}']), prop)
        else:
            problems.add('no_proposals', ann_dir, f'{names[f"proposals_{s}"]} not found: the '
                         "configs read it (mmaction2's download_annotations.sh fetches it)",
                         split=s)
    outputs.check(force)
    # frames
    seconds = timestamp_end - timestamp_start + 1
    need = (timestamp_end - timestamp_start) * fps + 1  # SampleAVAFrames' last index
    params = dict(fps=int(fps), start=int(timestamp_start), end=int(timestamp_end),
                  seconds=int(seconds), quality=int(quality), video_offset=str(video_offset))
    frame_info: Dict[str, dict] = {}
    todo = [v for v in videos if v in src_of]
    if extract and todo:
        tasks = [dict(src=src_of[v], dst=osp.join(frames_root, v), params=params,
                      info=dict(video=v)) for v in todo]
        bar = Progress(len(tasks), label='AVA frames', unit='videos', stream=stream,
                       enabled=progress)
        try:
            if workers <= 1 or len(tasks) == 1:
                results = []
                for t in tasks:
                    results.append(_extract_one(t))
                    bar.update()
            else:
                method = 'fork' if 'fork' in mp.get_all_start_methods() else 'spawn'
                with mp.get_context(method).Pool(workers, initializer=_init_extract_worker) as p:
                    results = []
                    for r in p.imap_unordered(_extract_one, tasks):
                        results.append(r)
                        bar.update()
        except KeyboardInterrupt:
            raise Interrupted('interrupted; finished videos have their .done file: run the '
                              'same command again to resume') from None
        finally:
            bar.close()
        for r in results:
            frame_info[r['video']] = r
    elif not extract:
        for v in videos:
            folder = osp.join(frames_root, v)
            frame_info[v] = dict(video=v, status='checked', frames=count_frames(folder))
            try:
                with open(osp.join(folder, DONE_FILE)) as f:
                    made = json.load(f).get('params')
            except (OSError, ValueError):
                continue  # extracted by other tools: only the count is checked
            if made != params:
                problems.add('frames_other_settings', folder, f'extracted with {made}, not '
                             f'{params}: rerun without --no-extract to redo them')
    for v, r in sorted(frame_info.items()):
        if r['status'] == 'failed':
            problems.add('extract_failed', src_of.get(v, v), r['error'])
        elif r['frames'] < need:
            problems.add('short_video', osp.join(frames_root, v), f'{r["frames"]} frames, the '
                         f'data set reads up to frame {need} (seconds {timestamp_start}..'
                         f'{timestamp_end} at {fps} fps)')
    status = Counter(r['status'] for r in frame_info.values())
    summary = dict(dataset=f'ava{version}', num_actions=len(action_ids),
                   num_eval_actions=len(eval_ids) if eval_ids is not None else None,
                   annotations_dir=osp.abspath(anno_out), frames_dir=osp.abspath(frames_root),
                   video_dir=osp.abspath(video_dir) if video_dir else None,
                   splits=counts, videos=len(videos), videos_missing=len(missing),
                   frames=dict(status), frame_params=params)
    return finish(out_dir, f'ava{version}', outputs, summary, problems, force)
