"""Something-Something V2 from its official annotation files.

Official download (20bn / Qualcomm): ``labels.json`` (``{"<template>":
"<id>", ...}``, 174 templates, ids "0".."173"), ``train.json`` and
``validation.json`` (a JSON list of ``{"id": "78687", "label": "holding
potato next to vicks vaporub bottle", "template": "Holding [something] next
to [something]", "placeholders": [...]}``), and the videos ``<id>.webm``
(VP9) in one folder.

An item's class is its ``template`` with the brackets removed, looked up in
``labels.json`` (bracketed keys and different spacing or case are accepted
too). Output, next to the video folder, under the names the configs read:

* ``sthv2_train_list_videos.txt`` / ``sthv2_val_list_videos.txt``:
  ``<id>.webm <label>``, in the json's order, label ids exactly as
  ``labels.json`` gives them;
* ``label_map_sthv2.txt``: line ``i`` is the template of label ``i``.
"""
import json
import os
import os.path as osp
import re
from typing import Dict, Iterator, List, Optional, Tuple

from amd_mmaction.data.prepare.common import (PrepareError, Outputs, Problems, check_out_dir, find_first, finish,
                     list_text, read_text, require_dir, require_file)

PREFIX = 'sthv2'
LIST_NAMES = {'train': 'sthv2_train_list_videos.txt', 'val': 'sthv2_val_list_videos.txt'}
LABEL_MAP = 'label_map_sthv2.txt'
ANN_NAMES = {'labels': ('labels.json', 'something-something-v2-labels.json'),
             'train': ('train.json', 'something-something-v2-train.json'),
             'val': ('validation.json', 'val.json', 'something-something-v2-validation.json')}


def normalize_template(text: str) -> str:
    """``'Putting [something] on a surface'`` -> ``'putting something on a
    surface'``: brackets dropped, spaces collapsed, case folded."""
    return re.sub(r'\s+', ' ', text.replace('[', '').replace(']', '')).strip().casefold()


def _line_of(text: str, pos: int) -> int:
    return text.count('\n', 0, pos) + 1


def iter_json_items(path: str, what: str) -> Iterator[Tuple[int, object]]:
    """``(line, item)`` of a JSON list file (the official format) or of a
    JSON-lines file; a syntax error is a :class:`PrepareError` naming
    ``file:line:column``."""
    text = read_text(path, what)
    dec = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    if pos >= len(text):
        raise PrepareError(f'{path}: {what} is empty; expected a JSON list of objects')

    def fail(err: json.JSONDecodeError, expected: str):
        raise PrepareError(f'{path}:{err.lineno}:{err.colno}: {what} is not valid JSON '
                           f'({err.msg}); expected {expected}') from None

    ws = re.compile(r'\s*')
    if text[pos] == '[':  # the official form: one list
        pos += 1
        first = True
        while True:
            pos = ws.match(text, pos).end()
            if pos < len(text) and text[pos] == ']':
                pos = ws.match(text, pos + 1).end()
                if pos != len(text):
                    raise PrepareError(f'{path}:{_line_of(text, pos)}: {what}: text after '
                                       'the end of the JSON list')
                return
            if not first:
                if pos >= len(text) or text[pos] != ',':
                    err = json.JSONDecodeError("Expecting ',' delimiter", text, pos)
                    fail(err, 'a JSON list of objects')
                pos = ws.match(text, pos + 1).end()
            first = False
            try:
                item, end = dec.raw_decode(text, pos)
            except json.JSONDecodeError as err:
                fail(err, 'a JSON list of objects')
            yield _line_of(text, pos), item
            pos = end
    # JSON lines (or concatenated objects)
    while pos < len(text):
        try:
            item, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            fail(err, 'one JSON object per line')
        yield _line_of(text, pos), item
        pos = ws.match(text, end).end()


def read_labels(path: str) -> Tuple[List[str], Dict[str, int]]:
    """Class names in id order and ``{normalized template: id}`` from the
    official ``labels.json``; ids must be 0..N-1, each once."""
    text = read_text(path, 'SSV2 labels.json')
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise PrepareError(f'{path}:{err.lineno}:{err.colno}: labels.json is not valid JSON '
                           f'({err.msg}); expected {{"<template>": "<id>", ...}}') from None
    if isinstance(data, list):  # tolerate [{"template":..., "id":...}] / [names]
        if all(isinstance(x, str) for x in data):
            data = {name: i for i, name in enumerate(data)}
        else:
            raise PrepareError(f'{path}: labels.json is a list; expected an object '
                               '{"<template>": "<id>", ...}')
    if not isinstance(data, dict) or not data:
        raise PrepareError(f'{path}: expected a non-empty JSON object '
                           '{"<template>": "<id>", ...}')
    by_id: Dict[int, str] = {}
    lookup: Dict[str, int] = {}
    for name, value in data.items():
        try:
            idx = int(str(value).strip())
        except ValueError:
            raise PrepareError(f'{path}:{_line_of(text, text.find(json.dumps(name)[1:-1]))}: '
                               f'the id of {name!r} is {value!r}, not an integer') from None
        if idx in by_id:
            raise PrepareError(f'{path}: id {idx} is given to both {by_id[idx]!r} and {name!r}')
        key = normalize_template(name)
        if key in lookup:
            raise PrepareError(f'{path}: {name!r} and {by_id[lookup[key]]!r} are the same '
                               'template')
        by_id[idx] = name
        lookup[key] = idx
    n = len(by_id)
    if sorted(by_id) != list(range(n)):
        gaps = sorted(set(range(n)) - set(by_id))[:5]
        raise PrepareError(f'{path}: class ids must be 0..{n - 1}, each once; missing {gaps}, '
                           f'largest {max(by_id)}')
    names = [by_id[i].replace('[', '').replace(']', '') for i in range(n)]
    return names, lookup


def read_split(path: str, split: str, lookup: Dict[str, int], names: List[str],
               problems: Problems) -> List[Tuple[str, int, str]]:
    """``[(video id, label, 'file:line'), ...]`` of one official split file."""
    rows, seen = [], {}
    for line, item in iter_json_items(path, f'SSV2 {split} json'):
        where = f'{path}:{line}'
        if not isinstance(item, dict) or 'id' not in item or 'template' not in item:
            keys = sorted(item) if isinstance(item, dict) else type(item).__name__
            problems.add('malformed', where, f'expected an object with "id" and "template", '
                         f'got {keys}', split=split)
            continue
        vid = str(item['id']).strip()
        template = item['template']
        if not vid or not isinstance(template, str):
            problems.add('malformed', where, f'bad "id" {item["id"]!r} or "template" '
                         f'{template!r}', split=split)
            continue
        label = lookup.get(normalize_template(template))
        if label is None:
            problems.add('unknown_label', where, f'item id {vid}: template {template!r} is not '
                         f'in labels.json ({len(names)} templates)', split=split, id=vid)
            continue
        if vid in seen:
            first_line, first_label = seen[vid]
            if first_label != label:
                problems.add('conflicting_label', where, f'item id {vid} is listed again with '
                             f'label {label} ({names[label]!r}); line {first_line} gave '
                             f'{first_label} ({names[first_label]!r})', split=split, id=vid)
            else:
                problems.add('duplicate', where, f'item id {vid} is listed again (first at '
                             f'line {first_line}); kept once', split=split, id=vid)
            continue
        seen[vid] = (line, label)
        rows.append((vid, label, where))
    return rows


def prepare_ssv2(video_dir: str, out_dir: str, ann_dir: Optional[str] = None,
                 labels: Optional[str] = None, train: Optional[str] = None,
                 val: Optional[str] = None, ext: str = 'webm', force: bool = False,
                 skip_bad: bool = False, keep_missing: bool = False) -> dict:
    """Build the SSV2 lists and class map (see the module doc); returns a
    summary (counts, files, report paths). Raises :class:`PrepareError`."""
    ann_dir = ann_dir or ''
    labels = labels or (find_first(ann_dir, ANN_NAMES['labels']) if ann_dir else None)
    splits = {'train': train or (find_first(ann_dir, ANN_NAMES['train']) if ann_dir else None),
              'val': val or (find_first(ann_dir, ANN_NAMES['val']) if ann_dir else None)}
    if not labels:
        raise PrepareError(f'no labels.json in {ann_dir!r}; pass --ann-dir (the folder with '
                           'labels.json, train.json, validation.json) or --labels')
    require_file(labels, 'SSV2 labels.json')
    splits = {k: v for k, v in splits.items() if v}
    if not splits:
        raise PrepareError(f'neither train.json nor validation.json found in {ann_dir!r}')
    for split, path in splits.items():
        require_file(path, f'SSV2 {split} json')
    out_dir = check_out_dir(out_dir, [video_dir])
    if not keep_missing:
        require_dir(video_dir, 'SSV2 video folder')
    names, lookup = read_labels(labels)
    problems = Problems(skip_bad)
    rows = {split: read_split(path, split, lookup, names, problems)
            for split, path in splits.items()}
    problems.raise_if_fatal()
    present = set(os.listdir(video_dir)) if osp.isdir(video_dir) else set()
    outputs, counts = Outputs(), {}
    ext = ext.lstrip('.')
    for split, items in rows.items():
        lines, missing = [], 0
        for vid, label, where in items:
            rel = f'{vid}.{ext}'
            if rel not in present:
                missing += 1
                problems.add('missing', where, f'video {osp.join(video_dir, rel)!r} does not '
                             'exist' + (' (listed anyway: --keep-missing)' if keep_missing
                                        else ' (left out of the list)'),
                             split=split, expected=rel, label=label)
                if not keep_missing:
                    continue
            lines.append(f'{rel} {label}')
        outputs.add(osp.join(out_dir, LIST_NAMES[split]), list_text(lines))
        counts[split] = dict(annotated=len(items), listed=len(lines), missing=missing)
    outputs.add(osp.join(out_dir, LABEL_MAP), list_text(names))
    summary = dict(dataset='ssv2', num_classes=len(names), video_dir=osp.abspath(video_dir),
                   annotations=dict(labels=osp.abspath(labels),
                                    **{k: osp.abspath(v) for k, v in splits.items()}),
                   splits=counts,
                   lists={k: osp.join(out_dir, LIST_NAMES[k]) for k in rows},
                   label_map=osp.join(out_dir, LABEL_MAP))
    return finish(out_dir, PREFIX, outputs, summary, problems, force)
