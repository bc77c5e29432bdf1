"""UCF101 and HMDB51 from their official split files (3 splits each).

UCF101 (``UCF101TrainTestSplits-RecognitionTask.zip`` -> ``ucfTrainTestlist/``):
``classInd.txt`` (``1 ApplyEyeMakeup``, ids from 1), ``trainlist0{1,2,3}.txt``
(``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``), ``testlist0{1,2,3}.txt``
(no label: the class is the folder). Videos ``UCF-101/<Class>/<name>.avi``.
Labels in the lists are ``classInd - 1``; a train-list label that disagrees
with its folder is an error.

HMDB51 (``test_train_splits.rar`` -> ``testTrainMulti_7030_splits/``):
``<class>_test_split{1,2,3}.txt`` with lines ``<name>.avi <0|1|2>`` (1 train,
2 test, 0 unused). Class ids are the class names sorted (as mmaction2's
``parse_hmdb51_split``). Videos ``<video folder>/<class>/<name>.avi``.

Outputs, under the names the configs read:
``ucf101_{train,val}_split_{k}_videos.txt`` / ``hmdb51_{train,val}_split_{k}_videos.txt``
(``<Class>/<name>.avi <label>``), ``label_map_ucf101.txt`` / ``label_map_hmdb51.txt``.
A video found flat in the video folder (not in its class folder) is listed
at its real place.
"""
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

from amd_mmaction.data.prepare.common import (PrepareError, Outputs, Problems, check_out_dir, finish, has_space,
                     index_videos, list_text, require_dir, require_file, text_lines)

SPLITS = (1, 2, 3)


def ucf_list_name(split: str, k: int) -> str:
    return f'ucf101_{split}_split_{k}_videos.txt'


def hmdb_list_name(split: str, k: int) -> str:
    return f'hmdb51_{split}_split_{k}_videos.txt'


class _Videos:
    """Where the listed videos are: ``<Class>/<name>`` first, else the same
    file name anywhere under the folder."""

    def __init__(self, root: str):
        self.root = root
        self.rels = set()
        self.by_name: Dict[str, List[str]] = {}
        if osp.isdir(root):
            for rels in index_videos(root).values():
                for rel in rels:
                    self.rels.add(rel)
                    self.by_name.setdefault(rel.rsplit('/', 1)[-1], []).append(rel)

    def find(self, rel: str) -> Optional[str]:
        if rel in self.rels:
            return rel
        found = self.by_name.get(rel.rsplit('/', 1)[-1])
        return found[0] if found else None


def _check_splits(splits: Sequence[int]) -> List[int]:
    splits = sorted(set(int(k) for k in splits))
    if not splits or any(k not in SPLITS for k in splits):
        raise PrepareError(f'--splits {splits}: expected some of 1 2 3')
    return splits


def _emit(rows, videos: _Videos, split: str, k: int, problems: Problems,
          keep_missing: bool) -> Tuple[List[str], int]:
    """List lines for ``rows`` [(rel, label, where)], checking files."""
    lines, missing = [], 0
    for rel, label, where in rows:
        found = videos.find(rel)
        if found is None:
            missing += 1
            problems.add('missing', where, f'video {osp.join(videos.root, rel)!r} does not exist',
                         split=f'{split}{k}', expected=rel, label=label)
            if not keep_missing:
                continue
            found = rel
        if has_space(found):
            problems.add('space_in_path', where, f'{found!r} holds a space: mmaction2 splits '
                         'list lines on spaces', split=f'{split}{k}')
            continue
        lines.append(f'{found} {label}')
    return lines, missing


def read_class_ind(path: str) -> List[str]:
    """Class names by 0-based label from UCF101's ``classInd.txt``."""
    by_id: Dict[int, str] = {}
    for lineno, text in text_lines(path, 'UCF101 classInd.txt'):
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise PrepareError(f'{path}:{lineno}: {text!r}; expected "<id> <ClassName>" with '
                               'ids from 1')
        idx = int(parts[0])
        if idx in by_id:
            raise PrepareError(f'{path}:{lineno}: id {idx} again ({by_id[idx]!r} and '
                               f'{parts[1]!r})')
        by_id[idx] = parts[1]
    n = len(by_id)
    if sorted(by_id) != list(range(1, n + 1)):
        raise PrepareError(f'{path}: class ids must be 1..{n}, each once')
    names = [by_id[i] for i in range(1, n + 1)]
    dup = {x for x in names if names.count(x) > 1}
    if dup:
        raise PrepareError(f'{path}: class names listed twice: {sorted(dup)}')
    return names


def _ucf_split_file(path: str, what: str, label_of: Dict[str, int], names: List[str],
                    labeled: bool, problems: Problems, split: str):
    rows, seen = [], {}
    for lineno, text in text_lines(path, what):
        where = f'{path}:{lineno}'
        parts = text.split()
        if labeled and len(parts) != 2 or not labeled and len(parts) not in (1, 2):
            problems.add('malformed', where, f'{text!r}; expected "<Class>/<name>.avi'
                         + (' <class id>"' if labeled else '"'), split=split)
            continue
        rel = parts[0].replace('\\', '/')
        folder = rel.split('/')[0] if '/' in rel else None
        if folder is None:
            problems.add('malformed', where, f'{rel!r} has no class folder; expected '
                         '"<Class>/<name>.avi"', split=split)
            continue
        label = label_of.get(folder)
        if label is None:
            problems.add('unknown_label', where, f'class folder {folder!r} is not in classInd.txt',
                         split=split)
            continue
        if len(parts) == 2:
            if not parts[1].isdigit():
                problems.add('malformed', where, f'class id {parts[1]!r} is not an integer',
                             split=split)
                continue
            given = int(parts[1]) - 1
            if given != label:
                problems.add('label_mismatch', where, f'{rel}: class id {parts[1]} is '
                             f'{names[given] if 0 <= given < len(names) else "not in classInd"!r}'
                             f', but the folder is {folder!r} (id {label + 1})', split=split)
                continue
        if rel in seen:
            problems.add('duplicate', where, f'{rel} listed again (first at line {seen[rel]}); '
                         'kept once', split=split)
            continue
        seen[rel] = lineno
        rows.append((rel, label, where))
    return rows


def prepare_ucf101(ann_dir: str, video_dir: str, out_dir: str, splits: Sequence[int] = SPLITS,
                   force: bool = False, skip_bad: bool = False,
                   keep_missing: bool = False) -> dict:
    """UCF101 lists for ``splits`` and the class map (see the module doc)."""
    splits = _check_splits(splits)
    require_dir(ann_dir, 'UCF101 split folder (ucfTrainTestlist)')
    class_ind = require_file(osp.join(ann_dir, 'classInd.txt'), 'UCF101 classInd.txt')
    files = {}
    for k in splits:
        for split, name in (('train', f'trainlist{k:02d}.txt'), ('val', f'testlist{k:02d}.txt')):
            files[(split, k)] = require_file(osp.join(ann_dir, name), f'UCF101 {name}')
    out_dir = check_out_dir(out_dir, [video_dir])
    if not keep_missing:
        require_dir(video_dir, 'UCF101 video folder')
    names = read_class_ind(class_ind)
    label_of = {n: i for i, n in enumerate(names)}
    problems = Problems(skip_bad)
    rows = {key: _ucf_split_file(path, osp.basename(path), label_of, names, key[0] == 'train',
                                 problems, f'{key[0]}{key[1]}')
            for key, path in files.items()}
    for k in splits:  # a video in both the train and the test list of a split
        train = {r[0]: r[2] for r in rows[('train', k)]}
        for rel, _, where in rows[('val', k)]:
            if rel in train:
                problems.add('in_two_splits', where, f'{rel} is also in the train list of split '
                             f'{k} ({train[rel]})', split=f'val{k}')
    return _write_lists('ucf101', ucf_list_name, rows, names, ann_dir, video_dir, out_dir,
                        problems, keep_missing, force)


_HMDB_FILE = re.compile(r'(.+)_test_split([123])\.txt$')


def prepare_hmdb51(ann_dir: str, video_dir: str, out_dir: str, splits: Sequence[int] = SPLITS,
                   force: bool = False, skip_bad: bool = False,
                   keep_missing: bool = False) -> dict:
    """HMDB51 lists for ``splits`` and the class map (see the module doc)."""
    splits = _check_splits(splits)
    require_dir(ann_dir, 'HMDB51 split folder (testTrainMulti_7030_splits)')
    found: Dict[str, Dict[int, str]] = {}
    for name in sorted(os.listdir(ann_dir)):
        m = _HMDB_FILE.match(name)
        if m:
            found.setdefault(m.group(1), {})[int(m.group(2))] = osp.join(ann_dir, name)
    if not found:
        raise PrepareError(f'no "<class>_test_split<1|2|3>.txt" file in {ann_dir!r}')
    names = sorted(found)
    lacking = [f'{c}_test_split{k}.txt' for c in names for k in splits if k not in found[c]]
    if lacking:
        raise PrepareError(f'{ann_dir}: missing split files {lacking[:5]}'
                           + (f' and {len(lacking) - 5} more' if len(lacking) > 5 else ''))
    out_dir = check_out_dir(out_dir, [video_dir])
    if not keep_missing:
        require_dir(video_dir, 'HMDB51 video folder')
    problems = Problems(skip_bad)
    rows = {(s, k): [] for k in splits for s in ('train', 'val')}
    for k in splits:
        seen: Dict[str, Tuple[str, str]] = {}
        for label, cls in enumerate(names):
            path = found[cls][k]
            for lineno, text in text_lines(path, 'HMDB51 split file'):
                where = f'{path}:{lineno}'
                parts = text.split()
                if len(parts) != 2 or parts[1] not in ('0', '1', '2'):
                    problems.add('malformed', where, f'{text!r}; expected "<name>.avi <0|1|2>" '
                                 '(1 train, 2 test, 0 unused)', split=f'split{k}')
                    continue
                if parts[1] == '0':
                    continue
                video = parts[0]
                if video in seen:
                    first_cls, first_where = seen[video]
                    kind = 'duplicate' if first_cls == cls else 'conflicting_label'
                    problems.add(kind, where, f'{video} listed again (first at {first_where}'
                                 + (f', class {first_cls!r})' if first_cls != cls else ')')
                                 + ('; kept once' if kind == 'duplicate' else ''),
                                 split=f'split{k}')
                    continue
                seen[video] = (cls, where)
                rows[('train' if parts[1] == '1' else 'val', k)].append(
                    (f'{cls}/{video}', label, where))
    return _write_lists('hmdb51', hmdb_list_name, rows, names, ann_dir, video_dir, out_dir,
                        problems, keep_missing, force)


def _write_lists(name, list_name, rows, names, ann_dir, video_dir, out_dir, problems,
                 keep_missing, force):
    """The lists of every (split, k) in ``rows``, the label map and the summary,
    written once nothing fatal was found (shared by UCF101 and HMDB51)."""
    problems.raise_if_fatal()
    videos = _Videos(video_dir)
    outputs, counts = Outputs(), {}
    for (split, k), items in rows.items():
        lines, missing = _emit(items, videos, split, k, problems, keep_missing)
        outputs.add(osp.join(out_dir, list_name(split, k)), list_text(lines))
        counts[f'{split}_split_{k}'] = dict(annotated=len(items), listed=len(lines),
                                            missing=missing)
    problems.raise_if_fatal()
    label_map = osp.join(out_dir, f'label_map_{name}.txt')
    outputs.add(label_map, list_text(names))
    summary = dict(dataset=name, num_classes=len(names), video_dir=osp.abspath(video_dir),
                   annotations=osp.abspath(ann_dir), splits=counts,
                   lists={f'{s}_split_{k}': osp.join(out_dir, list_name(s, k))
                          for (s, k) in rows},
                   label_map=label_map)
    return finish(out_dir, name, outputs, summary, problems, force)
