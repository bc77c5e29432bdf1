"""The one place where checkpoint files are deserialised, and where local
files are written atomically.

A ``.pth`` file is a pickle, and a full unpickle runs whatever the file
asks for (``os.system`` included). Every checkpoint this project reads
(teacher, ``load_from``, ``--resume``, exports, visualisation) goes through
:func:`load_checkpoint_file`, which uses torch's ``weights_only``
unpickler with an allow-list of exactly the globals that real checkpoints
need. A file that needs anything else is refused unless it is trusted by
name (``AMD_TRUST_CHECKPOINTS`` or a tool's ``--trust-checkpoint``).
:func:`load_local_checkpoint` is that loader as mmengine's local-file
scheme (``load_from``, ``resume``, ``load_checkpoint``).

:func:`atomic_write` writes a file so that it is always either its old or
its new contents (checkpoints, ``last_checkpoint``, logs: mmengine's local
writes go through it, see :mod:`amd_mmaction.compat`).
"""
import argparse
import contextlib
import glob
import inspect
import os
import os.path as osp
import pickle
import re
import shutil
import socket
import tempfile

import torch

TRUST_ENV = 'AMD_TRUST_CHECKPOINTS'


class UntrustedCheckpointError(ValueError):
    """A checkpoint's pickle asks for a global outside the allow-list."""


def _numpy_globals():
    """numpy scalars and arrays (mmengine's message hub and ``meta``). Files
    written under numpy 1 name ``numpy.core``, under numpy 2 ``numpy._core``:
    both names map to the functions of the installed numpy."""
    import numpy as np
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    out = [(np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        out += [(multiarray._reconstruct, f'{mod}._reconstruct'),
                (multiarray.scalar, f'{mod}.scalar')]
    # numpy >= 1.25: a dtype instance's type is its class (Float64DType, ...),
    # which torch must know to BUILD (set the state of) the dtype.
    dtypes = getattr(np, 'dtypes', None)
    for name in dir(dtypes) if dtypes is not None else ():
        cls = getattr(dtypes, name)
        if name.endswith('DType') and isinstance(cls, type) and issubclass(cls, np.dtype):
            out.append((cls, f'numpy.dtypes.{name}'))
    return out


def _class_functions_getattr(classes):
    """A stand-in for ``builtins.getattr`` that only returns functions
    defined on ``classes``: mmengine's HistoryBuffer pickles its statistics
    methods as ``getattr(HistoryBuffer, 'mean')``. The real getattr would
    let a file reach any attribute (``__globals__``, modules)."""
    def safe_getattr(obj, name):
        if (obj in classes and isinstance(name, str) and not name.startswith('_')
                and inspect.isfunction(vars(obj).get(name))):
            return vars(obj)[name]
        raise pickle.UnpicklingError(
            f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint (only '
            f'public functions of {sorted(c.__name__ for c in classes)})')
    return safe_getattr


def allowed_globals():
    """The allow-list, as (object, 'module.name') pairs for
    :func:`torch.serialization.safe_globals`, beyond torch's own defaults
    (tensors, storages, OrderedDict, torch.Size/dtype/device)."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return [
        (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (_class_functions_getattr((HistoryBuffer,)), 'builtins.getattr'),
        # VideoMAE / AMD / MAE releases keep the training args. The weights_only
        # unpickler rebuilds it with __new__ + __dict__.update: no code runs.
        (argparse.Namespace, 'argparse.Namespace'),
    ] + _numpy_globals()


def trusted_paths():
    """Real paths named in ``AMD_TRUST_CHECKPOINTS`` (os.pathsep-separated)."""
    value = os.environ.get(TRUST_ENV, '')
    return {osp.realpath(osp.expanduser(p)) for p in value.split(os.pathsep) if p}


def trust_checkpoints(paths):
    """Trust these files for a full unpickle in this process and its
    children (what ``--trust-checkpoint`` does)."""
    paths = [osp.abspath(osp.expanduser(p)) for p in paths or []]
    if paths:
        old = [p for p in os.environ.get(TRUST_ENV, '').split(os.pathsep) if p]
        os.environ[TRUST_ENV] = os.pathsep.join(old + paths)


def is_trusted(path) -> bool:
    return osp.realpath(osp.expanduser(str(path))) in trusted_paths()


# What torch's weights_only unpickler (and safe_getattr) say when a file asks
# for something outside the allow-list; other failures are damaged files.
_REFUSALS = re.compile(r'GLOBAL (\S+)|(unrecognized function [^\n]*)|'
                       r'(getattr\([^\n]*\) is not allowed)|(Can only [^\n]*)')


def _refused_global(err: Exception):
    match = _REFUSALS.search(str(err))
    if match is None:
        return None
    if match.group(1):
        return f'the global {match.group(1)}'
    return f"something torch's weights_only unpickler refuses ({match.group(0)})"


def load_checkpoint_file(path, map_location='cpu', trust: bool = False):
    """``torch.load`` of a local checkpoint that never runs code from the
    file unless ``trust`` is set or the file is named in
    ``AMD_TRUST_CHECKPOINTS``. Raises :class:`UntrustedCheckpointError`
    naming the file, the refused global and how to opt in; other read errors
    (truncated file, not a torch file) propagate unchanged."""
    path = str(path)
    refuse_text_pointer(path)
    if trust or is_trusted(path):
        return torch.load(path, map_location=map_location, weights_only=False)
    safe_globals = getattr(torch.serialization, 'safe_globals', None)
    if safe_globals is None:
        raise UntrustedCheckpointError(
            f'checkpoint {path!r}: torch {torch.__version__} has no '
            'torch.serialization.safe_globals (torch >= 2.5), so its contents '
            'cannot be checked. Upgrade torch, or trust the file: '
            f'{_opt_in(path)}')
    try:
        with safe_globals(allowed_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _refused_global(err)
        if refused is None:
            raise
        raise UntrustedCheckpointError(
            f'checkpoint {path!r} was not loaded: its pickle asks for '
            f'{refused}, which is not on the allow-list of '
            'checkpoint contents (tensors, numbers, strings, containers, numpy '
            'scalars/arrays, mmengine HistoryBuffer, argparse.Namespace). A full '
            'unpickle could run code from the file. If you trust this file, '
            f'opt in for it: {_opt_in(path)}') from err


def _opt_in(path) -> str:
    return (f'{TRUST_ENV}={osp.abspath(path)} in the environment, or '
            f'--trust-checkpoint {osp.abspath(path)} (every tool that reads a '
            'checkpoint: tools/train.py, tools/test.py, tools/export_checkpoint.py, '
            'tools/export_hf.py, tools/export_image_student.py, '
            'tools/visualize_reconstruction.py, tools/model_zoo.py, demo/demo.py), or '
            'trust=True in amd_mmaction.weights.io.load_checkpoint_file')


def add_trust_argument(parser) -> None:
    """``--trust-checkpoint PATH`` (repeatable) for a tool's argparse parser;
    pass the parsed list to :func:`trust_checkpoints`."""
    parser.add_argument(
        '--trust-checkpoint', action='append', default=[], metavar='PATH',
        help='allow a full unpickle of this checkpoint file, which can run code '
             'from it (default: weights_only with an allow-list; '
             'docs/reliability.md); repeatable')


class NotACheckpointError(ValueError):
    """The file is no checkpoint at all (e.g. a ``last_checkpoint`` pointer)."""


def refuse_text_pointer(path) -> None:
    """A short one-line text file naming a checkpoint (``epoch_1.pth``, a
    path) is no checkpoint but a work dir's ``last_checkpoint`` pointer. torch would fail on it with "pop
    from empty list"; raise :class:`NotACheckpointError` naming the file it
    points to."""
    path = str(path)
    try:
        if not osp.isfile(path) or osp.getsize(path) > 4096:
            return
        with open(path, 'rb') as f:
            data = f.read()
        text = data.decode('utf-8')
    except (OSError, UnicodeDecodeError):
        return
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1 or any(ord(c) < 32 for c in lines[0]):
        return
    name = lines[0]
    target = name if osp.isabs(name) or '://' in name else \
        osp.join(osp.dirname(osp.abspath(path)), name)
    if not (name.endswith(('.pth', '.pt', '.ckpt')) or osp.isfile(target)):
        return  # some other text: the loader's own "not a torch file" error
    where = (f'use the checkpoint it names: {target}' if osp.isfile(target) else
             f'it names {target}, which does not exist')
    raise NotACheckpointError(
        f'{path!r} is not a checkpoint but a text file holding {name!r} (a work dir\'s '
        f'last_checkpoint pointer names the latest checkpoint so); {where}')


# A checkpoint a pre-flight check has just read, kept for the next load of
# the same unchanged file (the Runner's ``load_from``), so the file is read
# once, not twice: {(real path, size, mtime_ns): checkpoint}, one entry.
_HANDED_OVER: dict = {}


def _file_key(path):
    st = os.stat(path)
    return osp.realpath(path), st.st_size, st.st_mtime_ns


def hand_over(path, checkpoint) -> None:
    """Keep ``checkpoint`` (read from ``path`` onto the CPU) for the next
    :func:`load_local_checkpoint` of the same file, if it is unchanged by then
    (same size and modification time); used once, then dropped."""
    _HANDED_OVER.clear()
    _HANDED_OVER[_file_key(path)] = checkpoint


def load_local_checkpoint(filename, map_location=None):
    """mmengine's loader for a local file (``load_from``, ``resume``,
    mmengine's ``load_checkpoint``): :func:`load_checkpoint_file`, with a
    missing file, a refused pickle and a damaged file told apart. A
    checkpoint handed over by a pre-flight check (:func:`hand_over`) is
    returned instead of reading the file again (CPU loads only)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename!r} does not exist')
    if _HANDED_OVER and map_location in (None, 'cpu'):
        kept = _HANDED_OVER.pop(_file_key(filename), None)
        if kept is not None:
            return kept
    try:
        return load_checkpoint_file(filename, map_location=map_location)
    except (UntrustedCheckpointError, NotACheckpointError):
        raise
    except Exception as err:  # unpickling garbage raises anything (IndexError, ...)
        raise RuntimeError(
            f'checkpoint {filename!r} cannot be read ({err}); it is truncated '
            'or not a torch checkpoint. Resume from an earlier checkpoint or '
            'delete it.') from err


def atomic_write(path, data, mode, encoding=None) -> None:
    """Write ``data`` (``mode`` 'w' or 'wb') to ``path`` through a temporary
    file in the same folder, fsynced and renamed over ``path``: a crash
    mid-write leaves the old file, never a truncated one.

    Temporary files are named ``.NAME.PID@HOST.XXXX.tmp``. Once the new file
    is in place, leftovers of ``NAME`` from writers that died (SIGKILL, OOM)
    are removed; those of live writers (DDP ranks writing the same log) and
    of writers on other hosts are kept."""
    path = str(path)
    dirname = osp.dirname(osp.abspath(path))
    os.makedirs(dirname, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dirname, suffix='.tmp',
                               prefix=f'.{osp.basename(path)}.{_writer_tag()}.')
    try:
        # mkstemp makes 0600 files; give the file the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    prefix = f'.{osp.basename(path)}.'
    for stale in glob.glob(osp.join(glob.escape(dirname), glob.escape(prefix) + '*.tmp')):
        if _writer_alive(osp.basename(stale)[len(prefix):]):
            continue
        try:
            os.remove(stale)
        except OSError:
            pass


def _writer_tag() -> str:
    return f'{os.getpid()}@{socket.gethostname()}'


def _writer_alive(tag: str) -> bool:
    """Is the writer named at the start of a temporary file's ``tag``
    (``pid@host.``) running? Writers on other hosts count as running."""
    pid, at, rest = tag.partition('@')
    if not at or not pid.isdigit():
        return False  # not ours, or an older name: a leftover
    if not rest.startswith(socket.gethostname() + '.'):
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # exists, owned by someone else
    return True


def _fsync(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(out: str, folder: bool = False):
    """``with atomic_output(out) as tmp: write(tmp)``: the tool writes a
    temporary path beside ``out`` (same folder, same extension: image
    writers choose the format by it), which replaces ``out`` only when the
    block ends without an error; on an error it is removed and ``out`` is
    left as it was. ``folder=True``: ``tmp`` is a folder whose files replace
    those of the same names in ``out`` (created when missing)."""
    out = osp.abspath(str(out))
    parent = osp.dirname(out)
    made = []
    d = parent
    while not osp.isdir(d):
        made.append(d)
        d = osp.dirname(d)
    os.makedirs(parent, exist_ok=True)
    base = osp.basename(out)
    stem, ext = (base, '') if folder else osp.splitext(base)
    tmp = osp.join(parent, f'.{stem}.{os.getpid()}.tmp{ext}')
    if folder:
        os.makedirs(tmp, exist_ok=True)
    try:
        yield tmp
        if not folder:
            _fsync(tmp)
            os.replace(tmp, out)
        elif not osp.exists(out):
            for name in os.listdir(tmp):
                _fsync(osp.join(tmp, name))
            os.rename(tmp, out)
        else:
            for name in sorted(os.listdir(tmp)):
                _fsync(osp.join(tmp, name))
                os.replace(osp.join(tmp, name), osp.join(out, name))
            os.rmdir(tmp)
        _fsync(parent)
    except BaseException:
        if osp.isdir(tmp) and not osp.islink(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif osp.lexists(tmp):
            os.remove(tmp)
        for d in made:  # innermost first; only folders this call made, when empty
            try:
                os.rmdir(d)
            except OSError:
                break
        raise
