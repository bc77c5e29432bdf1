"""mmaction2 video lists, checked line by line before any training.

A list is what mmaction2's ``VideoDataset`` reads: one ``<relative path>
<label>`` per line. Its parser (``line.strip().split(delimiter)``, then
``filename, label = ...``) accepts less than it seems: with the default
``delimiter=' '`` a tab- or comma-separated line has one field, so it
becomes an *unlabeled* video named ``'a.mp4\\t3'`` (label -1), which fails
much later in mixup or the loss, naming no file; two spaces in a row give
an empty field and an unpacking error. The checks here accept exactly the
lines mmaction2 parses correctly and name ``file:line``, the text and what
was expected for every other one.
"""
import os
import os.path as osp
import re
from typing import List, NamedTuple, Optional, Tuple

from amd_mmaction.data.probe import BadClipError, probe_video

# a single field that is "<path><sep><int>" with a separator mmaction2
# would not split on (the configured delimiter is handled before)
_OTHER_SEP = re.compile(r'(.*?\S)\s*([,;|]|\s)\s*(-?\d+)')
_SEP_NAMES = {' ': 'spaces', '\t': 'tabs', ',': 'commas', ';': 'semicolons', '|': 'bars'}
MAX_REPORTED = 10  # bad lines listed in one error; the rest are counted


class ListEntry(NamedTuple):
    lineno: int
    path: str  # data_prefix joined, as mmaction2 does
    label: object  # int (-1: unlabeled) or a list of ints (multi_class)


def expected_form(num_classes: Optional[int] = None, multi_class: bool = False,
                  delimiter: str = ' ') -> str:
    form = '"<relative path> <label> [<label> ...]"' if multi_class \
        else '"<relative path> <label>"'
    sep = 'one space' if delimiter == ' ' else f'{delimiter!r}'
    rng = f'label in [0, {num_classes})' if num_classes else 'label an integer >= 0'
    return f'expected {form} separated by {sep}, {rng}'


def _label(value: str, num_classes: Optional[int]) -> int:
    try:
        label = int(value)
    except ValueError:
        raise ValueError(f'label {value!r} is not an integer') from None
    if label < 0 or (num_classes is not None and label >= num_classes):
        top = num_classes - 1 if num_classes is not None else 'N'
        raise ValueError(f'label {label} is outside 0..{top}'
                         + (f' (num_classes={num_classes})' if num_classes else ''))
    return label


def parse_line(text: str, num_classes: Optional[int] = None, multi_class: bool = False,
               delimiter: str = ' ', require_label: bool = False) -> Tuple[str, object]:
    """``(relative path, label)`` of one stripped, non-empty line, or
    ``ValueError`` saying what is wrong (without file:line)."""
    if delimiter != '\t' and '\t' in text:
        raise ValueError(f'the line is tab-separated: mmaction2 splits on '
                         f'delimiter={delimiter!r} and would read one unlabeled path; '
                         f"use one space, or set the data set's delimiter='\\t'")
    fields = text.split(delimiter)
    if len(fields) == 1:
        m = _OTHER_SEP.fullmatch(text)
        if m and m.group(2) != delimiter:
            sep = _SEP_NAMES.get(m.group(2), repr(m.group(2)))
            raise ValueError(f'the line is separated by {sep}: mmaction2 splits on '
                             f'delimiter={delimiter!r} and would read one unlabeled path')
        if require_label or multi_class:
            raise ValueError('the line has no label')
        return text, -1
    if '' in fields:
        raise ValueError(f'empty field: several {delimiter!r} in a row '
                         '(mmaction2 splits on each one)')
    if multi_class:
        return fields[0], [_label(v, num_classes) for v in fields[1:]]
    if len(fields) != 2:
        hint = ' (a path with spaces cannot be listed)' if delimiter == ' ' else ''
        raise ValueError(f'expected "<path> <label>", got {len(fields)} fields{hint}')
    return fields[0], _label(fields[1], num_classes)


def file_problem(path: str, kind: str = 'video') -> Optional[str]:
    """Why ``path`` cannot be a ``kind`` (missing, not a file, 0 bytes), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return f'{kind} {path!r} does not exist'
    if not osp.isfile(path):
        return f'{kind} {path!r} is not a file'
    if st.st_size == 0:
        return f'{kind} {path!r} is a 0-byte file'
    return None


def format_errors(list_file: str, errors: List[str], total: int) -> str:
    more = f'\n... and {total - len(errors)} more bad lines' if total > len(errors) else ''
    head = '' if total == 1 else f'{total} bad lines in {list_file!r}:\n'
    return head + '\n'.join(errors) + more


def scan_video_list(list_file: str, data_prefix: Optional[str] = None,
                    num_classes: Optional[int] = None, multi_class: bool = False,
                    delimiter: str = ' ', require_label: bool = False,
                    check_files: bool = False):
    """Yield ``(entry, None)`` per good line and ``(None, message)`` per bad
    one, the message starting with ``file:line:``. With ``check_files`` a
    listed video that does not exist is a bad line."""
    if not osp.isfile(list_file):
        raise FileNotFoundError(f'annotation file {list_file!r} does not exist')
    with open(list_file) as f:
        lines = f.read().splitlines()
    expect = expected_form(num_classes, multi_class, delimiter)
    for lineno, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            rel, label = parse_line(text, num_classes, multi_class, delimiter, require_label)
        except ValueError as err:
            yield None, f'{list_file}:{lineno}: {err}: {text!r}; {expect}'
            continue
        path = osp.join(data_prefix, rel) if data_prefix else rel
        if check_files and not osp.exists(path):
            yield None, f'{list_file}:{lineno}: video {path!r} does not exist (listed as {rel!r})'
            continue
        yield ListEntry(lineno, path, label), None


def check_video_list(list_file: str, data_prefix: Optional[str] = '',
                     num_classes: Optional[int] = None, check_files: bool = True,
                     *, require_label: bool = True, delimiter: str = ' ',
                     probe: bool = False) -> List[Tuple[str, int]]:
    """Validate an mmaction2 ``VideoDataset`` list before any training.

    Returns ``[(path, label), ...]`` in file order, ``path`` joined with
    ``data_prefix``. Raises ``ValueError`` listing every bad line (the first
    ``MAX_REPORTED``) as ``file:line: problem: 'text'; expected ...``: a
    line mmaction2 would misread (tab / comma separated, several spaces in a
    row, extra fields), a missing (``require_label``), non-integer or
    out-of-range label (``[0, num_classes)``, or ``>= 0`` when ``num_classes``
    is None), and with ``check_files`` a video that is missing, not a file
    or 0 bytes; with ``probe`` also one PyAV cannot open or that has no
    frames. An empty list is an error; a missing list ``FileNotFoundError``.
    """
    out, errors, total = [], [], 0
    for entry, err in scan_video_list(list_file, data_prefix, num_classes, False, delimiter,
                                      require_label, check_files):
        if err is None and check_files:
            problem = file_problem(entry.path)
            if problem is None and probe:
                try:
                    probe_video(entry.path)
                except BadClipError as bad:
                    problem = str(bad)
            if problem:
                err = f'{list_file}:{entry.lineno}: {problem}'
        if err is not None:
            total += 1
            if len(errors) < MAX_REPORTED:
                errors.append(err)
            continue
        out.append((entry.path, entry.label))
    if errors:
        raise ValueError(format_errors(list_file, errors, total))
    if not out:
        raise ValueError(f'annotation file {list_file!r} lists no video (the file is empty); '
                         f'{expected_form(num_classes)}')
    return out
