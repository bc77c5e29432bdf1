"""One run per work dir: an exclusive OS lock held for the run's whole life.

Two runs started in the same work dir used to both run and both exit 0, the
second silently replacing the first's checkpoints, ``last_checkpoint`` and
config copy. ``tools/train.py`` and ``tools/test.py`` now take
:class:`WorkDirLock` before anything is written there; a second run fails at
once, naming the holder's pid, host, start time and command.

* The lock is ``fcntl.flock`` on ``<work_dir>/.lock``: the kernel releases it
  when the holder exits in any way (SIGKILL and OOM included), so a crashed
  run never leaves a stale lock. The file itself holds the holder's pid,
  host, start time and command, as text, only for the message.
* A clean exit (or a refused start) removes ``.lock`` and, when the lock
  itself created the work dir and nothing else was written, the work dir:
  a refused run leaves the disk as it was. A killed run leaves ``.lock``
  behind, unlocked: the next run takes it and rewrites it.
* Distributed runs (``--launcher pytorch|slurm|mpi``): only global rank 0
  takes the lock, for the whole job (:func:`takes_lock`). The other ranks
  share it: they do not lock their own job out. When rank 0 is refused it
  exits 1 and the launcher (torchrun, ``srun --kill-on-bad-exit``) stops the
  other ranks.
* A file system without ``flock`` support (errno ENOLCK / EOPNOTSUPP, e.g.
  some FUSE mounts) gets a warning and no lock.
"""
import datetime
import errno
import fcntl
import os
import os.path as osp
import shlex
import socket
import sys
import time
import warnings
from typing import List, Optional

LOCK_NAME = '.lock'

# global-rank variables of the launchers tools/train.py and tools/test.py accept
RANK_VARIABLES = {'pytorch': ('RANK',), 'slurm': ('SLURM_PROCID',),
                  'mpi': ('OMPI_COMM_WORLD_RANK', 'PMI_RANK', 'RANK')}


class WorkDirLocked(RuntimeError):
    """Another live run holds the work dir's lock."""


def takes_lock(launcher: str = 'none', environ=None) -> bool:
    """Does this process take the work-dir lock? Without a launcher, yes;
    with one, only global rank 0 (read from the launcher's environment, as
    the process group is not yet set up when the lock is taken)."""
    environ = os.environ if environ is None else environ
    for name in RANK_VARIABLES.get(launcher or 'none', ()):
        value = environ.get(name)
        if value not in (None, ''):
            return value.strip() == '0'
    return True


def _holder_text(what: str) -> str:
    now = datetime.datetime.now().astimezone()
    return (f'pid: {os.getpid()}\nhost: {socket.gethostname()}\n'
            f'started: {now.strftime("%Y-%m-%d %H:%M:%S %Z")}\n'
            f'started_unix: {time.time():.3f}\n'
            f'what: {what}\n'
            f'command: {shlex.join([sys.executable] + sys.argv)}\n')


def read_holder(path: str) -> dict:
    """What ``path`` (a ``.lock`` file) says about its holder: pid, host,
    started, command ({} when empty or unreadable)."""
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            text = f.read()
    except OSError:
        return {}
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(': ')
        if sep:
            info[key] = value
    return info


def describe_holder(info: dict) -> str:
    if not info.get('pid'):
        return 'a process that is still starting (it has not yet written its pid)'
    text = f'pid {info["pid"]}'
    if info.get('host'):
        text += f' on {info["host"]}'
    if info.get('started'):
        text += f', started {info["started"]}'
        try:
            ago = time.time() - float(info.get('started_unix', ''))
            text += f' ({_duration(ago)} ago)'
        except ValueError:
            pass
    if info.get('command'):
        text += f': {info["command"]}'
    return text


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f'{seconds} s'
    if seconds < 7200:
        return f'{seconds // 60} min'
    return f'{seconds // 3600} h {seconds % 3600 // 60} min'


class WorkDirLock:
    """``with WorkDirLock(work_dir, 'tools/train.py'):`` ... the run ...

    :meth:`acquire` raises :class:`WorkDirLocked` when another live process
    holds the lock. Not re-entrant; one object per run."""

    def __init__(self, work_dir: str, what: str = 'run'):
        self.work_dir = osp.abspath(work_dir)
        self.path = osp.join(self.work_dir, LOCK_NAME)
        self.what = what
        self._fd: Optional[int] = None
        self._made: List[str] = []  # folders this lock created, outermost first

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _make_dirs(self) -> None:
        missing, d = [], self.work_dir
        while not osp.isdir(d):
            missing.append(d)
            parent = osp.dirname(d)
            if parent == d:
                break
            d = parent
        for d in reversed(missing):
            try:
                os.mkdir(d)
                self._made.append(d)
            except FileExistsError:
                pass

    def acquire(self) -> 'WorkDirLock':
        if self._fd is not None:
            return self
        for _ in range(100):  # retried only while another run removes its lock file
            self._make_dirs()
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except FileNotFoundError:  # the folder went away (a refused run's cleanup)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holder = self._wait_for_holder_info()
                self._remove_made_dirs()
                raise WorkDirLocked(
                    f'work dir {self.work_dir} is in use by another run: '
                    f'{describe_holder(holder)}. Two runs in one work dir would overwrite '
                    "each other's checkpoints, last_checkpoint and config copy. Wait for it "
                    'to end, or give this run another --work-dir (the lock, '
                    f'{self.path}, is released when that process exits, killed too).') from None
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    warnings.warn(f'work dir {self.work_dir}: the file system cannot lock '
                                  f'{self.path} ({err.strerror}); a second run in this work '
                                  'dir would not be stopped')
                    return self
                raise
            if not self._same_file(fd):  # locked a file another run has just removed
                os.close(fd)
                continue
            self._fd = fd
            self._write_holder()
            return self
        raise WorkDirLocked(f'could not take the lock {self.path}: it was removed and '
                            'recreated 100 times in a row')

    def _same_file(self, fd: int) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        fst = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)

    def _write_holder(self) -> None:
        data = _holder_text(self.what).encode()
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)
        except OSError:  # a full disk: the lock holds all the same, without the text
            pass

    def _wait_for_holder_info(self, timeout: float = 2.0) -> dict:
        """The holder writes its details right after it locks: give it a moment."""
        deadline = time.time() + timeout
        while True:
            info = read_holder(self.path)
            if info.get('pid') or time.time() > deadline:
                return info
            time.sleep(0.05)

    def _remove_made_dirs(self) -> None:
        for d in reversed(self._made):
            try:
                os.rmdir(d)  # only when empty: never anything a run wrote
            except OSError:
                break
        self._made = []

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if self._same_file(self._fd):
                os.remove(self.path)  # still locked: no other run can hold it
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
        self._remove_made_dirs()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
