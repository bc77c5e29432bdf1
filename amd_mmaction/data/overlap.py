"""Held-out integrity: a validation clip must never be trained on.

Bring-your-own-data lists are written by hand or by scripts, and a clip
that sits in the validation list *and* in a training list (the students'
train list, the teacher's unlabeled pool) makes every number measured on
the validation clips optimistic without any visible sign. Two ways a clip
can be in both:

- **the same path**: the same file listed twice (after joining the data
  prefix and resolving ``.``/``..`` and symbolic links);
- **the same content**: two files with identical bytes (a copy, a
  re-upload under another name), found by SHA-256 of the file.

Only files of equal size are hashed (different sizes cannot be equal), in
1 MiB chunks; digests are cached per ``(path, size, mtime)``, so a rerun
over unchanged files reads nothing twice.
"""
import hashlib
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from amd_mmaction.data.lists import MAX_REPORTED, scan_video_list

CHUNK = 1 << 20  # bytes read at a time when hashing
_DIGESTS: Dict[Tuple[str, int, int], str] = {}  # (real path, size, mtime_ns) -> sha256


class Overlap(NamedTuple):
    """One clip of the held-out list that is also in another list."""
    held_file: str  # the held-out (validation) list
    held_line: int
    held_path: str  # as listed, data prefix joined
    other_file: str  # the training list it is also in
    other_line: int
    other_path: str
    how: str  # 'same path' or 'same content (sha256 <first 12 hex digits>)'

    def message(self) -> str:
        return (f'{self.held_file}:{self.held_line}: validation clip {self.held_path!r} is '
                f'also in {self.other_file}:{self.other_line} ({self.other_path!r}, '
                f'{self.how})')


def file_sha256(path: str) -> str:
    """Hex SHA-256 of the file's bytes, read in :data:`CHUNK` pieces and
    cached by (real path, size, modification time)."""
    real = osp.realpath(path)
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns)
    digest = _DIGESTS.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(real, 'rb') as f:
            for block in iter(lambda: f.read(CHUNK), b''):
                h.update(block)
        digest = _DIGESTS[key] = h.hexdigest()
    return digest


def _entries(list_file: str, data_prefix: Optional[str]) -> List[Tuple[int, str]]:
    """(line, path) of every well-formed line (the lists' own checks,
    :func:`~amd_mmaction.data.lists.check_video_list`, report the others)."""
    return [(e.lineno, e.path) for e, err in scan_video_list(list_file, data_prefix)
            if err is None]


def _size(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_size
    except OSError:  # a missing file is the list check's business
        return None


def find_overlaps(held_out: str, others: Sequence[str],
                  data_prefix: Optional[str] = None) -> List[Overlap]:
    """Every (held-out line, other line) pair naming the same clip, by path
    or by content, in held-out line order. ``held_out`` and each of
    ``others`` are mmaction2 lists (``path [label]``) whose paths are
    relative to ``data_prefix``. Lines that do not parse are skipped (check
    the lists first); files that do not exist are compared by path only."""
    held = _entries(held_out, data_prefix)
    other = [(f, line, path) for f in others for line, path in _entries(f, data_prefix)]
    by_path = defaultdict(list)
    for f, line, path in other:
        by_path[osp.realpath(path)].append((f, line, path))
    # content: only sizes present on both sides can match
    held_sizes = {_size(p) for _, p in held} - {None}
    by_digest, other_sizes = defaultdict(list), set()
    for f, line, path in other:
        size = _size(path)
        if size in held_sizes:
            other_sizes.add(size)
            by_digest[file_sha256(path)].append((f, line, path))
    found = []
    for line, path in held:
        same = by_path.get(osp.realpath(path), [])
        for f, oline, opath in same:
            found.append(Overlap(held_out, line, path, f, oline, opath, 'same path'))
        if _size(path) not in other_sizes:
            continue
        digest = file_sha256(path)
        for f, oline, opath in by_digest.get(digest, []):
            if (f, oline, opath) not in same:
                found.append(Overlap(held_out, line, path, f, oline, opath,
                                     f'same content (sha256 {digest[:12]})'))
    return found


def check_disjoint(held_out: str, others: Sequence[str],
                   data_prefix: Optional[str] = None) -> None:
    """Raise ``ValueError`` when a clip of ``held_out`` (the validation list)
    is also in one of ``others`` (the train list, the teacher's pool), by
    path or by content (:func:`find_overlaps`). The message names
    ``file:line`` of both occurrences for each (the first
    ``MAX_REPORTED``) and the fix."""
    found = find_overlaps(held_out, others, data_prefix)
    if not found:
        return
    shown = '\n'.join(o.message() for o in found[:MAX_REPORTED])
    more = (f'\n... and {len(found) - MAX_REPORTED} more' if len(found) > MAX_REPORTED else '')
    raise ValueError(
        f'{len(found)} validation clip occurrence(s) of {held_out!r} also listed for '
        f'training:\n{shown}{more}\nA validation clip must never reach the teacher\'s pool '
        'or the students\' training set (its scores would be measured on clips the '
        'models were trained on): remove each one from the validation list or from the '
        'training list / pool.')
