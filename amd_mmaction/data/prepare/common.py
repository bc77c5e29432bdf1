"""What every data set builder shares: the user-error class, reading the
official text files (file:line in every message), atomic writes that never
replace an existing list without ``force``, the output-folder check, a
problem collector and the progress bar.

Nothing here imports torch, mmengine or mmaction: the builders run in a
bare Python with the standard library (PyAV / decord / cv2 only where a
video is opened).
"""
import json
import os
import os.path as osp
import re
import sys
import time
from collections import Counter, OrderedDict
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from amd_mmaction.weights.io import atomic_output
from amd_mmaction.weights.io import atomic_write as io_atomic_write

MAX_SHOWN = 10  # problems quoted in one error message; the rest are counted
VIDEO_EXTS = ('.mp4', '.webm', '.mkv', '.avi', '.mov', '.m4v', '.flv')
_SPACE = re.compile(r'\s')


class PrepareError(Exception):
    """A problem with the user's input or command line: printed as
    ``error: <message>`` (no traceback), exit status 1."""


class Interrupted(PrepareError):
    """Ctrl-C during a long step; what finished is kept (exit status 130)."""


def ignore_sigint() -> None:
    """In pool workers: leave Ctrl-C to the parent, which stops the pool."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ----------------------------------------------------------------- reading

def require_file(path: str, what: str) -> str:
    """``path`` if it is a readable file, else :class:`PrepareError` saying
    which official file was expected there."""
    if not osp.exists(path):
        raise PrepareError(f'{what} {path!r} does not exist')
    if not osp.isfile(path):
        raise PrepareError(f'{what} {path!r} is not a file')
    return path


def require_dir(path: str, what: str) -> str:
    if not osp.isdir(path):
        raise PrepareError(f'{what} {path!r} is not a folder'
                           + ('' if osp.exists(path) else ' (it does not exist)'))
    return path


def read_text(path: str, what: str = 'file') -> str:
    """The text of ``path`` (UTF-8, a byte-order mark dropped, CRLF and CR
    line ends made LF). Not UTF-8: :class:`PrepareError` naming the line."""
    require_file(path, what)
    with open(path, 'rb') as f:
        data = f.read()
    try:
        text = data.decode('utf-8-sig')
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b'\n') + 1
        raise PrepareError(f'{path}:{line}: {what} is not UTF-8 text ({err.reason} at '
                           f'byte {err.start})') from None
    return text.replace('\r\n', '\n').replace('\r', '\n')


def text_lines(path: str, what: str = 'file') -> Iterator[Tuple[int, str]]:
    """``(line number, stripped text)`` of each non-empty line."""
    for lineno, line in enumerate(read_text(path, what).split('\n'), start=1):
        line = line.strip()
        if line:
            yield lineno, line


def find_first(folder: str, names: Sequence[str]) -> Optional[str]:
    """The first of ``names`` that exists in ``folder`` (None if none)."""
    for name in names:
        path = osp.join(folder, name)
        if osp.isfile(path):
            return path
    return None


def index_videos(root: str, exts: Sequence[str] = VIDEO_EXTS) -> Dict[str, List[str]]:
    """Every video file under ``root`` (any depth) by its name without the
    extension: ``{stem: [relative path, ...]}``, paths sorted, '/'-joined."""
    exts = tuple(e.lower() for e in exts)
    out: Dict[str, List[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = osp.relpath(dirpath, root)
        for name in sorted(filenames):
            stem, ext = osp.splitext(name)
            if ext.lower() in exts:
                rel = name if rel_dir == '.' else f'{rel_dir}/{name}'.replace(os.sep, '/')
                out.setdefault(stem, []).append(rel)
    return out


def has_space(rel: str) -> bool:
    return bool(_SPACE.search(rel))


def rename_spaces(root: str) -> List[Tuple[str, str]]:
    """Rename every file and folder under ``root`` whose name holds
    whitespace (each run of it becomes one '_'), as mmaction2's
    ``rename_classnames.sh`` does for Kinetics. Refuses (before renaming
    anything) when a new name is taken. Returns ``[(old, new), ...]``
    relative to ``root``."""
    plan = []
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            if has_space(name):
                new = re.sub(r'\s+', '_', name.strip())
                plan.append((osp.join(dirpath, name), osp.join(dirpath, new)))
    targets = Counter(new for _, new in plan)
    for old, new in plan:
        if osp.exists(new) or targets[new] > 1:
            raise PrepareError(f'cannot rename {old!r} to {new!r}: that name is taken; '
                               'rename it by hand')
    for old, new in plan:  # bottom-up: children before their folder
        os.rename(old, new)
    return [(osp.relpath(o, root), osp.relpath(n, root)) for o, n in plan]


# ----------------------------------------------------------------- writing

def check_out_dir(out_dir: str, video_dirs: Iterable[Optional[str]]) -> str:
    """Refuse an output folder that is, or lies inside, a video folder
    (lists and reports would mix with the clips, and a later scan would take
    them for videos). Returns the absolute output folder."""
    out_real = osp.realpath(out_dir)
    for vd in video_dirs:
        if not vd:
            continue
        vd_real = osp.realpath(vd)
        if out_real == vd_real or out_real.startswith(vd_real.rstrip(os.sep) + os.sep):
            raise PrepareError(
                f'output folder {out_dir!r} is inside the video folder {vd!r}; write the '
                f'lists next to the videos instead (e.g. {osp.dirname(vd_real.rstrip(os.sep))!r})')
    return osp.abspath(out_dir)


def atomic_write(path: str, data) -> None:
    """Write ``data`` (str: UTF-8, or bytes) to ``path`` through a temporary
    file in the same folder, fsynced, then renamed over ``path``: a reader
    sees the old file or the new one, never half of one."""
    if isinstance(data, str):
        data = data.encode('utf-8')
    io_atomic_write(path, data, 'wb')


def atomic_copy(src: str, dst: str) -> None:
    """Copy a (possibly large, binary) file atomically."""
    import shutil
    with atomic_output(dst) as tmp:
        shutil.copyfile(src, tmp)


def _same_file_content(path: str, data: bytes = None, src: str = None) -> bool:
    if not osp.isfile(path):
        return False
    size = len(data) if data is not None else os.path.getsize(src)
    if os.path.getsize(path) != size:
        return False
    with open(path, 'rb') as f:
        if data is not None:
            return f.read() == data
        with open(src, 'rb') as s:
            while True:
                a, b = f.read(1 << 20), s.read(1 << 20)
                if a != b:
                    return False
                if not a:
                    return True


class Outputs:
    """The files one command writes, checked together before any is written.

    ``protected`` files (lists, class maps, annotation copies) are never
    replaced by different content without ``force``; a file that already
    holds exactly the new content is left alone ('unchanged'), so running a
    command twice is harmless. Reports are rewritten every run."""

    def __init__(self):
        self.items: 'OrderedDict[str, tuple]' = OrderedDict()

    def add(self, path: str, text: str, protected: bool = True) -> None:
        self.items[osp.abspath(path)] = ('data', text.encode('utf-8'), protected)

    def add_copy(self, path: str, src: str, protected: bool = True) -> None:
        self.items[osp.abspath(path)] = ('copy', src, protected)

    def check(self, force: bool = False) -> None:
        clash = []
        for path, (kind, payload, protected) in self.items.items():
            if not protected or force or not osp.exists(path):
                continue
            if kind == 'copy' and osp.realpath(payload) == osp.realpath(path):
                continue
            same = _same_file_content(path, payload if kind == 'data' else None,
                                      payload if kind == 'copy' else None)
            if not same:
                clash.append(path)
        if clash:
            shown = ', '.join(repr(p) for p in clash[:MAX_SHOWN])
            more = f' and {len(clash) - MAX_SHOWN} more' if len(clash) > MAX_SHOWN else ''
            raise PrepareError(f'{len(clash)} output file(s) exist with different content: '
                               f'{shown}{more}; nothing was written. Pass --force to replace '
                               'them, or choose another output folder')

    def commit(self, force: bool = False) -> List[Tuple[str, str]]:
        """Check all, then write all; ``[(path, 'written' | 'unchanged' |
        'replaced'), ...]``."""
        self.check(force)
        done = []
        for path, (kind, payload, protected) in self.items.items():
            if kind == 'copy' and osp.realpath(payload) == osp.realpath(path):
                done.append((path, 'unchanged'))
                continue
            existed = osp.exists(path)
            if existed and _same_file_content(path, payload if kind == 'data' else None,
                                              payload if kind == 'copy' else None):
                done.append((path, 'unchanged'))
                continue
            if kind == 'data':
                atomic_write(path, payload)
            else:
                atomic_copy(payload, path)
            done.append((path, 'replaced' if existed else 'written'))
        return done


def list_text(lines: Sequence[str]) -> str:
    return ''.join(line + '\n' for line in lines)


# ----------------------------------------------------------------- problems

# problems that stop a build unless --skip-bad drops their rows
FATAL = ('malformed', 'unknown_label', 'label_mismatch', 'conflicting_label',
         'space_in_path', 'bad_box', 'bad_timestamp')


class Problems:
    """Problems met while reading annotations: ``kind``, where
    (``file:line``), what. Fatal kinds stop the build (all listed in one
    message) unless ``skip_bad``; the others are warnings."""

    def __init__(self, skip_bad: bool = False):
        self.skip_bad = skip_bad
        self.items: List[dict] = []

    def add(self, kind: str, where: str, detail: str, **extra) -> None:
        self.items.append(dict(kind=kind, where=where, detail=detail, **extra))

    def counts(self) -> Dict[str, int]:
        return dict(sorted(Counter(p['kind'] for p in self.items).items()))

    def of(self, kind: str) -> List[dict]:
        return [p for p in self.items if p['kind'] == kind]

    def fatal(self) -> List[dict]:
        return [p for p in self.items if p['kind'] in FATAL]

    def raise_if_fatal(self, hint: str = '') -> None:
        bad = self.fatal()
        if not bad or self.skip_bad:
            return
        shown = '\n'.join(f'  {p["where"]}: {p["detail"]}' for p in bad[:MAX_SHOWN])
        more = f'\n  ... and {len(bad) - MAX_SHOWN} more' if len(bad) > MAX_SHOWN else ''
        kinds = ', '.join(f'{k}: {n}' for k, n in Counter(p['kind'] for p in bad).items())
        raise PrepareError(f'{len(bad)} bad annotation row(s) ({kinds}); nothing was written:\n'
                           f'{shown}{more}\n' + (hint + '\n' if hint else '')
                           + 'Fix them, or pass --skip-bad to leave these rows out '
                           '(they are listed in the report)')

    def format(self, limit: int = 20) -> str:
        lines = []
        for kind, n in self.counts().items():
            lines.append(f'{kind}: {n}')
            for p in self.of(kind)[:limit]:
                lines.append(f'  {p["where"]}: {p["detail"]}')
            if n > limit:
                lines.append(f'  ... and {n - limit} more (see the JSON report)')
        return '\n'.join(lines)


def write_report(out_dir: str, prefix: str, summary: dict, problems: Problems) -> Tuple[str, str]:
    """``<prefix>_prepare_report.json`` (everything) and ``.txt`` (readable);
    rewritten every run (atomically). No timestamps: the same input gives
    the same report."""
    data = dict(summary, problem_counts=problems.counts(), problems=problems.items)
    jpath = osp.join(out_dir, f'{prefix}_prepare_report.json')
    tpath = osp.join(out_dir, f'{prefix}_prepare_report.txt')
    atomic_write(jpath, json.dumps(data, indent=1, ensure_ascii=False) + '\n')
    lines = [f'# {prefix}: prepare report', '']
    for key, value in summary.items():
        lines.append(f'{key}: {json.dumps(value, ensure_ascii=False)}')
    lines += ['', 'problems:' if problems.items else 'problems: none']
    if problems.items:
        lines.append(problems.format())
    atomic_write(tpath, '\n'.join(lines) + '\n')
    return jpath, tpath


def write_missing(out_dir: str, prefix: str, problems: Problems) -> str:
    """``<prefix>_missing_videos.txt``: one tab-separated line per listed
    clip without a video file: split, annotation file:line, expected
    relative path (and label). Rewritten every run (empty if none)."""
    path = osp.join(out_dir, f'{prefix}_missing_videos.txt')
    rows = [f'{p.get("split", "")}\t{p["where"]}\t{p.get("expected", "")}\t{p.get("label", "")}'
            for p in problems.of('missing')]
    atomic_write(path, list_text(rows))
    return path


def finish(out_dir: str, prefix: str, outputs: Outputs, summary: dict, problems: Problems,
           force: bool) -> dict:
    """Commit the protected outputs, then (re)write the report and the
    missing-video list; returns the summary with file statuses."""
    done = outputs.commit(force)
    summary = dict(summary, files={osp.relpath(p, out_dir): s for p, s in done})
    jpath, tpath = write_report(out_dir, prefix, summary, problems)
    mpath = write_missing(out_dir, prefix, problems)
    summary.update(report=jpath, report_txt=tpath, missing_file=mpath,
                   problem_counts=problems.counts())
    return summary


# ----------------------------------------------------------------- progress

def fmt_seconds(s: float) -> str:
    if s != s or s == float('inf'):
        return '?'
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f'{h}:{m:02d}:{sec:02d}' if h else f'{m:d}:{sec:02d}'


class Progress:
    """A progress bar with rate and ETA on stderr: redrawn in place on a
    terminal (at most 5 times a second), one line every 10 s otherwise."""

    def __init__(self, total: int, label: str = '', unit: str = 'clips', stream=None,
                 enabled: bool = True, done: int = 0):
        self.total, self.label, self.unit = total, label, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, 'isatty', lambda: False)())
        self.start = time.monotonic()
        self.done0 = done
        self.done = done
        self.last = 0.0

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        new = self.done - self.done0
        rate = new / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done
        eta = left / rate if rate > 0 else float('nan')
        frac = self.done / self.total if self.total else 1.0
        bar = '#' * int(frac * 24)
        return (f'{self.label} [{bar:<24}] {self.done}/{self.total} {100 * frac:5.1f}% '
                f'{rate:.1f} {self.unit}/s elapsed {fmt_seconds(elapsed)} ETA {fmt_seconds(eta)}')

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        every = 0.2 if self.tty else 10.0
        if now - self.last < every and self.done < self.total:
            return
        self.last = now
        if self.tty:
            self.stream.write('\r' + self.line())
        else:
            self.stream.write(self.line() + '\n')
        self.stream.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write('\r' + self.line() + '\n')
        elif self.done != self.total or time.monotonic() - self.last > 0.5:
            self.stream.write(self.line() + '\n')
        self.stream.flush()
