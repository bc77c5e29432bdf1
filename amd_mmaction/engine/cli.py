"""What the command-line tools share: config handling (tools/train.py,
tools/test.py), the work-dir lock, one clean message for a refusal, and
outputs that never destroy an input or an existing file.

* :func:`run_main` runs a tool's ``main``: a refusal (an untrusted or
  mismatched checkpoint, a refused ``--resume``, a locked work dir, a
  refused output, a missing input, a full disk) is printed as one line
  ``<tool>: error: <message>`` on stderr with exit code 1, without a
  traceback; anything else (a bug) keeps its traceback.
* :func:`check_output` refuses an output that is one of the tool's inputs
  (always) or that exists (unless ``--force``, :func:`add_force_argument`);
  :func:`atomic_output` writes it beside its place and renames it there only
  when complete, so a failed or killed tool leaves the old file (or no file).
"""
import contextlib
import errno
import os.path as osp
import sys
from typing import Iterable, Optional, Sequence

from amd_mmaction.weights.io import atomic_output  # noqa: F401  (the tools' atomic writer)


def load_config(config: str, cfg_options: dict, launcher: str, work_dir: Optional[str]):
    """``config`` with the command line's ``--cfg-options``, launcher and work
    dir (default ``work_dirs/<config name>``, as mmaction2's tools)."""
    from mmengine.config import Config
    if not osp.isfile(config):
        raise FileNotFoundError(f'config {config!r} does not exist')
    cfg = Config.fromfile(config)
    # dotted keys, then the named switches (mask.teacher_ratio, views.num_views, ...)
    from amd_mmaction.engine.config_aliases import merge_options
    merge_options(cfg, cfg_options, config)
    cfg.launcher = launcher
    if work_dir:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


def cpu_distributed(cfg) -> None:
    """Without CUDA, NCCL cannot run: gloo, and a DDP wrapper that passes no
    device ids (CPU runs: the tests, the demo)."""
    import torch
    if torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.launcher != 'none' and 'model_wrapper_cfg' not in cfg:
        cfg.model_wrapper_cfg = dict(type='CPUSafeDistributedDataParallel')


def work_dir_lock(cfg, what: str):
    """The lock of ``cfg.work_dir`` for this run (``with work_dir_lock(cfg,
    'tools/train.py'):``): a :class:`~amd_mmaction.engine.lock.WorkDirLock`
    in the process that takes it (no launcher, or global rank 0), nothing in
    the other ranks of a distributed job, which share rank 0's."""
    from amd_mmaction.engine.lock import WorkDirLock, takes_lock
    if '://' in str(cfg.work_dir) or not takes_lock(cfg.get('launcher', 'none')):
        return contextlib.nullcontext()
    return WorkDirLock(cfg.work_dir, what)


# -- one clean message per refusal ----------------------------------------------------
class CommandError(RuntimeError):
    """A refusal a tool explains itself; :func:`run_main` prints it without a
    traceback."""


class OutputRefused(ValueError):
    """An output that would overwrite an input, or an existing file without
    ``--force``."""


# a full disk, a quota, a read-only file system: the environment, not a bug
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def refusal_types() -> tuple:
    """The exceptions :func:`run_main` prints as one line (the project's
    user-error classes)."""
    from amd_mmaction.engine.hooks.checkpoint import CheckpointSaveError
    from amd_mmaction.engine.lock import WorkDirLocked
    from amd_mmaction.engine.preflight import RunRefused
    from amd_mmaction.weights.io import NotACheckpointError, UntrustedCheckpointError
    from amd_mmaction.weights.mmaction import CheckpointMismatch
    return (CommandError, OutputRefused, RunRefused, WorkDirLocked, UntrustedCheckpointError,
            NotACheckpointError, CheckpointMismatch, CheckpointSaveError, FileNotFoundError)


def _causes(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__


def refusal_message(err: BaseException) -> Optional[str]:
    """The one line for ``err``, or None when it is not a refusal (a bug:
    keep its traceback). An error raised ``from`` a refusal (a reader that
    adds the file's name to it) is a refusal too, with its own message."""
    if any(isinstance(e, refusal_types()) for e in _causes(err)):
        message = str(err)
    elif isinstance(err, OSError) and err.errno in DISK_ERRNOS:
        message = str(err)
    else:
        return None
    if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
        message = f'{type(err).__name__}: {message}'
        from amd_mmaction.engine.hooks.checkpoint import CheckpointSaveError
        if err.errno in DISK_ERRNOS[:2] and not isinstance(err, CheckpointSaveError):
            message += ('. The disk is full: free space on it, then run again (a training '
                        'run continues from its last checkpoint with --resume)')
    return message


def run_main(main, argv: Optional[Sequence[str]] = None, prog: Optional[str] = None):
    """``if __name__ == '__main__': run_main(main)``. A refusal
    (:func:`refusal_message`) ends the process with one line on stderr,
    ``<prog>: error: <message>``, and exit code 1; a bug keeps its
    traceback; argparse's usage errors keep their exit code 2."""
    prog = prog or osp.basename(sys.argv[0])
    try:
        return main() if argv is None else main(argv)
    except Exception as err:  # noqa: BLE001  (sorted below: refusal or bug)
        message = refusal_message(err)
        if message is None:
            raise
        sys.stdout.flush()
        print(f'{prog}: error: {message}', file=sys.stderr, flush=True)
        sys.exit(1)


# -- outputs ----------------------------------------------------------------------------
def add_force_argument(parser) -> None:
    parser.add_argument('--force', action='store_true',
                        help='replace an existing output (never one of the inputs); it '
                             'is written beside it first and replaces it only when complete')


def _same(a: str, b: str) -> bool:
    if osp.realpath(a) == osp.realpath(b):
        return True
    try:
        return osp.exists(a) and osp.exists(b) and osp.samefile(a, b)
    except OSError:
        return False


def check_output(out: str, inputs: Iterable[Optional[str]] = (), force: bool = False,
                 files: Optional[Sequence[str]] = None, what: str = 'output') -> None:
    """Refuse to write ``out`` where that would destroy something.

    ``inputs``: the paths the tool reads (None entries are skipped; URLs are
    not checked). Each must exist (``FileNotFoundError`` naming it), and
    ``out`` must not be one of them (real paths and ``os.path.samefile``
    compared, so symlinks and hard links count): :class:`OutputRefused`,
    even with ``force``. ``files``: ``out`` is a folder the tool writes these
    names into (e.g. ``config.json``); each of them is checked too.
    An existing ``out`` (for a folder: any of ``files`` in it) is refused
    unless ``force``."""
    out = str(out)
    inputs = [str(p) for p in inputs if p is not None and '://' not in str(p)]
    for path in inputs:
        if not osp.exists(path):
            raise FileNotFoundError(f'input {path!r} does not exist')
    targets = [out] + [osp.join(out, name) for name in files or ()]
    for path in inputs:
        for target in targets:
            if _same(target, path):
                where = '' if target == out else f' (it would write {target})'
                raise OutputRefused(
                    f'the {what} {out} is one of the inputs, {path}{where}: writing it '
                    f'would destroy the input. Give the {what} another path.')
    if files is None:
        if osp.isdir(out):
            raise OutputRefused(f'the {what} {out} is a folder; give a file path')
        if osp.lexists(out) and not force:
            raise OutputRefused(
                f'the {what} {out} exists; add --force to replace it (it is replaced '
                'only once the new file is complete), or give another path')
        return
    if osp.lexists(out) and not osp.isdir(out):
        raise OutputRefused(f'the {what} {out} is a file; give a folder path')
    existing = [name for name in files if osp.lexists(osp.join(out, name))]
    if existing and not force:
        raise OutputRefused(
            f'the {what} folder {out} already holds {", ".join(existing)}; add --force to '
            'replace them (each is replaced only once the new one is complete), or give '
            'another folder')
