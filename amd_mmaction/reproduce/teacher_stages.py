"""Teacher stages for the dose-response (protocol v3): which checkpoint of
one teacher run each requested stage distils from.

A teacher run's work dir holds ``epoch_N.pth`` checkpoints (mmengine's
``CheckpointHook`` names, kept when ``max_keep_ckpts`` allows) and
``last_checkpoint`` naming the newest. A stage is requested as

- ``'untrained'`` or ``0``: the network before any training (no
  checkpoint: the random-initialised teacher, built from its seed);
- an ``int`` N >= 1 or ``'epoch_N'``: the checkpoint after epoch N;
- a ``float`` in (0, 1]: that fraction of the run's epochs (``1.0`` = the
  end; ``0.0`` = untrained). The run's epochs are ``total_epochs``, or, when
  not given, the epoch of the checkpoint ``last_checkpoint`` names; the
  fraction must land on a whole epoch (0.25 of 20 = epoch 5);
- ``'last'``: the checkpoint ``last_checkpoint`` names.

``1`` (int) is epoch 1 and ``1.0`` (float) the end of the run. A stage
whose checkpoint is not in the work dir is refused with the epochs that
are there (and how to keep them).
"""
import glob
import os
import os.path as osp
import re
from typing import Dict, List, NamedTuple, Optional, Sequence

from amd_mmaction.engine.hooks.checkpoint import resolve_last_checkpoint

EPOCH_FILE = re.compile(r'epoch_(\d+)\.pth')
UNTRAINED = 'untrained'


class TeacherStage(NamedTuple):
    name: str  # 'untrained' or 'epoch_N'
    epoch: int  # 0 for untrained
    checkpoint: Optional[str]  # None for untrained
    request: object  # as asked for


def saved_epochs(work_dir: str) -> Dict[int, str]:
    """{epoch: path} of the non-empty ``epoch_N.pth`` files in ``work_dir``."""
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'teacher work dir {work_dir!r} does not exist')
    out = {}
    for path in glob.glob(osp.join(glob.escape(work_dir), 'epoch_*.pth')):
        m = EPOCH_FILE.fullmatch(osp.basename(path))
        if m and osp.isfile(path) and os.stat(path).st_size > 0:
            out[int(m.group(1))] = path
    return dict(sorted(out.items()))


def _last_epoch(work_dir: str) -> Optional[int]:
    path = resolve_last_checkpoint(work_dir)
    if path is None:
        return None
    m = EPOCH_FILE.fullmatch(osp.basename(path))
    if not m:
        raise ValueError(f'{osp.join(work_dir, "last_checkpoint")} names {path!r}, not an '
                         'epoch_N.pth checkpoint: teacher stages are chosen by epoch (train '
                         'the teacher by epochs, EpochBasedTrainLoop)')
    return int(m.group(1))


def _epoch_of(request, total: Optional[int], work_dir: str) -> int:
    """The epoch ``request`` names (0 = untrained)."""
    if isinstance(request, bool):
        raise ValueError(f'teacher stage {request!r}: expected {UNTRAINED!r}, an epoch (int), '
                         "a fraction (float in [0, 1]), 'epoch_N' or 'last'")
    if isinstance(request, int):
        if request < 0:
            raise ValueError(f'teacher stage {request}: an epoch must be >= 0')
        return request
    if isinstance(request, float):
        if not 0 <= request <= 1:
            raise ValueError(f'teacher stage {request}: a fraction of the run must lie in '
                             '[0, 1] (an epoch is an int)')
        if request == 0:
            return 0
        if total is None:
            raise ValueError(f'teacher stage {request}: a fraction needs the run\'s epochs, '
                             f'and {work_dir} has no last_checkpoint; pass total_epochs')
        epoch = request * total
        if abs(epoch - round(epoch)) > 1e-9 or round(epoch) < 1:
            raise ValueError(f'teacher stage {request}: {request} x {total} epochs = '
                             f'{epoch:g}, not a whole epoch >= 1; choose a fraction that '
                             'lands on one, or ask for the epoch (int)')
        return int(round(epoch))
    if isinstance(request, str):
        if request == UNTRAINED:
            return 0
        if request == 'last':
            last = _last_epoch(work_dir)
            if last is None:
                raise ValueError(f"teacher stage 'last': {work_dir} has no last_checkpoint")
            return last
        m = re.fullmatch(r'epoch_(\d+)', request)
        if m:
            return int(m.group(1))
    raise ValueError(f'teacher stage {request!r}: expected {UNTRAINED!r}, an epoch (int), '
                     "a fraction (float in [0, 1]), 'epoch_N' or 'last'")


def select_teacher_stages(work_dir: str, stages: Sequence,
                          total_epochs: Optional[int] = None) -> List[TeacherStage]:
    """The checkpoint of every requested stage (module docstring), in the
    order asked. Raises ``ValueError`` naming every stage whose checkpoint is
    missing, with the epochs saved in ``work_dir`` and how to keep them;
    also for two requests naming the same epoch, or none at all."""
    if not stages:
        raise ValueError('no teacher stage requested (e.g. ["untrained", 0.25, 0.5, 1.0])')
    saved = saved_epochs(work_dir)
    total = total_epochs
    if total is None and any(isinstance(s, float) and s > 0 for s in stages):
        total = _last_epoch(work_dir)
    out, missing, seen = [], [], {}
    for request in stages:
        epoch = _epoch_of(request, total, work_dir)
        if epoch in seen:
            raise ValueError(f'teacher stages {seen[epoch]!r} and {request!r} both name '
                             f'epoch {epoch}; each stage must be a different checkpoint')
        seen[epoch] = request
        if epoch == 0:
            out.append(TeacherStage(UNTRAINED, 0, None, request))
        elif epoch in saved:
            out.append(TeacherStage(f'epoch_{epoch}', epoch, saved[epoch], request))
        else:
            missing.append(f'{request!r} (epoch {epoch})')
    if missing:
        have = ', '.join(osp.basename(p) for p in saved.values()) or 'none'
        raise ValueError(
            f'teacher stage(s) {", ".join(missing)}: no such checkpoint in {work_dir}; saved '
            f'epochs: {list(saved) or "none"} ({have}). Ask for saved epochs, or keep the '
            'checkpoints when training the teacher (default_hooks.checkpoint.interval = the '
            'stage spacing, max_keep_ckpts=-1).')
    return out
