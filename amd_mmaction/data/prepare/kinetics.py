"""Kinetics-400/600/700 from the official csv files.

Official annotations (DeepMind, ``kinetics400.tar.gz`` etc.): ``train.csv``,
``validate.csv`` (also ``val.csv``, ``kinetics_train.csv``...) with the header
``label,youtube_id,time_start,time_end,split`` (K600/K700 may add
``is_cc``). The header decides the column order; a file without a header
is read in the official order. The clips are YouTube cuts the user
downloads; the common download tools name them
``<youtube_id>_<time_start:06d>_<time_end:06d>.mp4`` (the CVDF tarballs,
ActivityNet's ``download.py``), flat or in a folder per class; a file named
just ``<youtube_id>.<ext>`` is accepted too. Any of
``.mp4 .webm .mkv .avi .mov .m4v .flv``.

Output (names the configs read, e.g. for 400):

* ``kinetics400_{train,val}_list_videos.txt``: ``<path relative to the
  split's video folder> <label>``;
* ``label_map_k400.txt``: the class names in sorted order (the official
  order: line ``i`` is label ``i``, as mmaction2's ``label_map_k400.txt``);
* ``kinetics400_missing_videos.txt``: every csv row with no clip file
  (Kinetics downloads always miss some), counted in the report.

mmaction2 splits list lines on spaces, so a path cannot hold one: class
folders named with spaces ("air drumming") are refused, or renamed to
underscores with ``rename_spaces=True`` (as mmaction2's
``rename_classnames.sh``).
"""
import csv
import io
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from amd_mmaction.data.prepare.common import (PrepareError, Outputs, Problems, VIDEO_EXTS, check_out_dir, find_first,
                     finish, has_space, index_videos, list_text, read_text, rename_spaces,
                     require_dir, require_file, text_lines)

COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end', 'split')
CSV_NAMES = {'train': ('train.csv', 'kinetics_train.csv', 'kinetics-400_train.csv',
                       'kinetics_400_train.csv'),
             'val': ('validate.csv', 'val.csv', 'kinetics_val.csv', 'kinetics-400_val.csv',
                     'kinetics_400_val.csv', 'validation.csv')}
SPLIT_WORDS = {'train': ('train', 'training'), 'val': ('val', 'validate', 'validation')}


def list_names(version: str) -> Dict[str, str]:
    return {s: f'kinetics{version}_{s}_list_videos.txt' for s in ('train', 'val')}


def label_map_name(version: str) -> str:
    return f'label_map_k{version}.txt'


def clip_stem(youtube_id: str, start: int, end: int) -> str:
    return f'{youtube_id}_{start:06d}_{end:06d}'


def _seconds(value: str) -> int:
    f = float(value)
    if f != int(f) or f < 0:
        raise ValueError(value)
    return int(f)


def read_csv(path: str, split: str, problems: Problems) -> List[dict]:
    """Rows ``{label, youtube_id, start, end, where}`` of one official csv
    (header in any column order, or none: the official order)."""
    text = read_text(path, f'Kinetics {split} csv')
    rows = list(csv.reader(io.StringIO(text)))
    numbered = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not numbered:
        raise PrepareError(f'{path}: the csv is empty; expected a header '
                           f'"{",".join(COLUMNS)}" and one row per clip')
    first_line, first = numbered[0]
    header = [c.strip().lower() for c in first]
    if 'youtube_id' in header:
        missing = [c for c in ('label', 'youtube_id', 'time_start', 'time_end') if c not in header]
        if missing:
            raise PrepareError(f'{path}:{first_line}: the header {",".join(first)!r} lacks '
                               f'{missing}; expected the columns {",".join(COLUMNS)} (any order)'
                               + ('; a test csv without labels cannot be listed'
                                  if missing == ['label'] else ''))
        col = {c: header.index(c) for c in header}
        body = numbered[1:]
    else:
        col = {c: i for i, c in enumerate(COLUMNS)}
        body = numbered
    expect = ('the columns ' + ','.join(sorted(col, key=col.get)))
    out = []
    for line, r in body:
        where = f'{path}:{line}'
        if len(r) <= max(col[c] for c in ('label', 'youtube_id', 'time_start', 'time_end')):
            problems.add('malformed', where, f'{len(r)} fields {",".join(r)!r}; expected '
                         f'{expect}', split=split)
            continue
        label = r[col['label']].strip()
        yid = r[col['youtube_id']].strip()
        try:
            start, end = _seconds(r[col['time_start']]), _seconds(r[col['time_end']])
        except ValueError:
            problems.add('malformed', where, f'time_start {r[col["time_start"]]!r} / time_end '
                         f'{r[col["time_end"]]!r} are not whole seconds; expected {expect}'
                         + ('' if 'youtube_id' in header else ' (no header: the official order '
                            'is assumed)'), split=split)
            continue
        if not label or not yid:
            problems.add('malformed', where, f'empty label or youtube_id; expected {expect}',
                         split=split)
            continue
        if 'split' in col and col['split'] < len(r):
            word = r[col['split']].strip().lower()
            if word and word not in SPLIT_WORDS[split]:
                problems.add('other_split', where, f'split column says {word!r} in the {split} '
                             'csv (kept)', split=split)
        out.append(dict(label=label, youtube_id=yid, start=start, end=end, where=where))
    return out


def read_classes(path: str) -> List[str]:
    """A class list: one name per line (mmaction2's ``label_map_k400.txt``)."""
    names = [t for _, t in text_lines(path, 'class list')]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise PrepareError(f'{path}: class names listed twice: {sorted(dup)[:5]}')
    return names


def prepare_kinetics(out_dir: str, version: str = '400', ann_dir: Optional[str] = None,
                     train_csv: Optional[str] = None, val_csv: Optional[str] = None,
                     train_dir: Optional[str] = None, val_dir: Optional[str] = None,
                     classes: Optional[str] = None, exts: Sequence[str] = VIDEO_EXTS,
                     force: bool = False, skip_bad: bool = False, keep_missing: bool = False,
                     rename: bool = False) -> dict:
    """Build the Kinetics lists, class map and missing-clip list (see the
    module doc). ``train_dir`` / ``val_dir`` default to
    ``<out_dir>/videos_train`` / ``videos_val`` (the configs' layout)."""
    version = str(version)
    if version not in ('400', '600', '700'):
        raise PrepareError(f'--version {version!r}: expected 400, 600 or 700')
    csvs = {'train': train_csv or (find_first(ann_dir, CSV_NAMES['train']) if ann_dir else None),
            'val': val_csv or (find_first(ann_dir, CSV_NAMES['val']) if ann_dir else None)}
    csvs = {k: v for k, v in csvs.items() if v}
    if not csvs:
        raise PrepareError(f'no official csv found in {ann_dir!r} (looked for '
                           f'{CSV_NAMES["train"][0]}, {CSV_NAMES["val"][0]}); pass --ann-dir '
                           'or --train-csv / --val-csv')
    for split, path in csvs.items():
        require_file(path, f'Kinetics {split} csv')
    dirs = {'train': train_dir or osp.join(out_dir, 'videos_train'),
            'val': val_dir or osp.join(out_dir, 'videos_val')}
    out_dir = check_out_dir(out_dir, [dirs[s] for s in csvs])
    for split in csvs:
        if not keep_missing:
            require_dir(dirs[split], f'Kinetics {split} video folder')
    problems = Problems(skip_bad)
    rows = {split: read_csv(path, split, problems) for split, path in csvs.items()}
    if classes:
        names = read_classes(classes)
    else:
        source = 'train' if 'train' in rows else 'val'
        names = sorted({r['label'] for r in rows[source]})
    label_of = {n: i for i, n in enumerate(names)}
    expected_n = int(version)
    renamed: Dict[str, list] = {}
    index: Dict[str, Dict[str, List[str]]] = {}
    for split in rows:
        if rename and osp.isdir(dirs[split]):
            done = rename_spaces(dirs[split])
            if done:
                renamed[split] = done
        index[split] = index_videos(dirs[split], exts) if osp.isdir(dirs[split]) else {}
    lists, counts = {}, {}
    seen_all: Dict[Tuple[str, int, int], str] = {}
    for split, items in rows.items():
        lines, seen, missing = [], {}, 0
        for r in items:
            key = (r['youtube_id'], r['start'], r['end'])
            stem = clip_stem(*key)
            where = r['where']
            label = label_of.get(r['label'])
            if label is None:
                problems.add('unknown_label', where, f'class {r["label"]!r} is not in the class '
                             f'list ({len(names)} classes'
                             + (f' from {classes}' if classes else ' of the train csv') + ')',
                             split=split)
                continue
            if key in seen:
                first_where, first_label = seen[key]
                if first_label != label:
                    problems.add('conflicting_label', where, f'clip {stem} listed again as '
                                 f'{r["label"]!r}; {first_where} has it as {names[first_label]!r}',
                                 split=split)
                else:
                    problems.add('duplicate', where, f'clip {stem} listed again (first at '
                                 f'{first_where}); kept once', split=split)
                continue
            seen[key] = (where, label)
            if key in seen_all and seen_all[key] != split:
                problems.add('in_two_splits', where, f'clip {stem} is also in the '
                             f'{seen_all[key]} csv', split=split)
            seen_all.setdefault(key, split)
            found = index[split].get(stem) or index[split].get(r['youtube_id'])
            if not found:
                missing += 1
                problems.add('missing', where, f'no clip file {stem}.* under {dirs[split]!r}',
                             split=split, expected=stem + '.mp4', label=r['label'])
                if not keep_missing:
                    continue
                found = [f'{stem}.mp4']
            if len(found) > 1:
                problems.add('ambiguous_file', where, f'{len(found)} files for clip {stem}: '
                             f'{found[:3]}; the first is listed', split=split)
            rel = found[0]
            if has_space(rel):
                problems.add('space_in_path', where, f'{rel!r} holds a space: mmaction2 splits '
                             'list lines on spaces', split=split)
                continue
            lines.append(f'{rel} {label}')
        lists[split] = lines
        counts[split] = dict(annotated=len(items), listed=len(lines), missing=missing)
    problems.raise_if_fatal('Class folders named with spaces: pass --rename-spaces to rename '
                            'them to underscores (as mmaction2 does)'
                            if problems.of('space_in_path') else '')
    if len(names) != expected_n:
        problems.add('class_count', classes or csvs.get('train', ''), f'{len(names)} classes, '
                     f'Kinetics-{version} has {expected_n}')
    outputs = Outputs()
    names_out = list_names(version)
    for split, lines in lists.items():
        outputs.add(osp.join(out_dir, names_out[split]), list_text(lines))
    outputs.add(osp.join(out_dir, label_map_name(version)), list_text(names))
    summary = dict(dataset=f'kinetics{version}', num_classes=len(names),
                   video_dirs={s: osp.abspath(dirs[s]) for s in rows},
                   annotations={k: osp.abspath(v) for k, v in csvs.items()},
                   splits=counts, renamed=renamed,
                   lists={s: osp.join(out_dir, names_out[s]) for s in rows},
                   label_map=osp.join(out_dir, label_map_name(version)))
    return finish(out_dir, f'kinetics{version}', outputs, summary, problems, force)
