"""Checks tools/train.py makes before the Runner exists, so that a refused
``--resume`` / ``load_from`` leaves the work dir exactly as it was (the
Runner writes its config copy and a log folder as soon as it is built).

* ``--resume`` with nothing to resume, of a finished run, or of a
  checkpoint whose weights do not fit the configured model;
* ``load_from`` of a pre-training checkpoint in a fine-tuning config
  (nothing would load: the backbone would train from random weights).
"""
import glob
import os
import os.path as osp
import shlex
from typing import Optional

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from amd_mmaction.engine.hooks.checkpoint import resolve_last_checkpoint
from amd_mmaction.weights.io import hand_over

# key prefixes of pre-training checkpoints: ours (AMDPretrainer) and the
# official VideoMAE / AMD releases
PRETRAIN_PREFIXES = ('student.', 'decoder.', 'aligner.', 'encoder.')


class RunRefused(RuntimeError):
    """The run must not start; the message says why and what to do."""


class RunFinished(Exception):
    """``--resume`` of a run that has already trained all its epochs."""


def checkpoints_in(folder: str) -> list:
    """The ``.pth`` files directly in ``folder``, oldest first (by mtime)."""
    paths = glob.glob(osp.join(glob.escape(folder), '*.pth'))
    return sorted(paths, key=lambda p: (osp.getmtime(p), p))


def read(path: str, what: str = 'checkpoint') -> dict:
    """A checkpoint through mmengine's loader: the door ``load_from`` and
    ``--resume`` themselves use, with its safety policy."""
    if osp.isdir(path):
        found = [osp.basename(p) for p in checkpoints_in(path)]
        held = (f'it holds {", ".join(found)}, e.g. {osp.join(path, found[-1])}' if found
                else 'it holds no .pth file')
        how = (f'To resume the latest checkpoint of a work dir use --work-dir {path} --resume '
               f'(no path: it reads {osp.join(path, "last_checkpoint")}), or name a '
               'checkpoint file' if what.startswith('--resume') else 'Name a checkpoint file')
        raise RunRefused(f'{what} {path} is a folder, not a checkpoint file. {how} ({held})')
    if not osp.isfile(path):
        raise RunRefused(f'{what} {path} does not exist')
    try:
        ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    except (ValueError, RuntimeError) as err:  # unreadable, untrusted: the loader says which
        raise RunRefused(str(err)) from err
    if not isinstance(ckpt, dict):
        raise RunRefused(f'checkpoint {path} holds a {type(ckpt).__name__}, expected a dict')
    return ckpt


def _state(ckpt: dict) -> dict:
    for key in ('state_dict', 'model', 'module'):
        if isinstance(ckpt.get(key), dict):
            return ckpt[key]
    return ckpt


def resume_target(cfg, explicit: Optional[str], allow_fresh: bool = False) -> Optional[str]:
    """The checkpoint ``--resume [explicit]`` resumes, checked; None: start
    fresh (no checkpoint and ``allow_fresh``). Raises :class:`RunRefused`
    or :class:`RunFinished`."""
    work_dir = cfg.work_dir
    if explicit is None:
        try:
            path = resolve_last_checkpoint(work_dir)
        except FileNotFoundError as err:
            raise RunRefused(f'--resume: {err}') from err
        if path is None:
            unrecorded = checkpoints_in(work_dir) if osp.isdir(work_dir) else []
            if unrecorded:  # e.g. a run killed while it wrote its first last_checkpoint
                names = ', '.join(osp.basename(p) for p in unrecorded)
                raise RunRefused(
                    f'--resume: {work_dir} has no last_checkpoint, but it holds {names} '
                    '(a run killed before it recorded its first checkpoint leaves this). '
                    f'Resume one by name: --resume {unrecorded[-1]}; or train from scratch '
                    'in another --work-dir (starting fresh here would replace them)')
            if allow_fresh:
                print(f'--resume --allow-fresh: no checkpoint in {work_dir}, starting from scratch')
                return None
            raise RunRefused(
                f'--resume: nothing to resume in {work_dir} (no last_checkpoint there). '
                'Check --work-dir, resume a given file with --resume PATH, train from '
                'scratch without --resume, or add --allow-fresh to start fresh when there '
                'is no checkpoint')
    else:
        path = explicit
    ckpt = read(path, '--resume:')
    _check_finished(cfg, path, ckpt.get('meta') or {})
    check_fits_model(cfg, path, _state(ckpt), ckpt.get('meta') or {})
    check_disk_room(cfg, path)
    return path


# room for the logs, the config copy and the scalars of a resumed run
LOG_ROOM = 1 << 20


def check_disk_room(cfg, path: str) -> None:
    """Refuse a resume whose next checkpoint cannot fit on the work dir's
    disk (free space < the size of the checkpoint it resumes, plus 1 MiB for
    logs): it would train until its first save and fail there, or fail at
    once writing its config copy. With ``delete_before_save=True`` the
    previous checkpoint's room counts as free."""
    from amd_mmaction.engine.hooks.checkpoint import full_disk_hint
    hook = ((cfg.get('default_hooks') or {}).get('checkpoint') or {})
    out_dir = hook.get('out_dir') or cfg.work_dir
    if '://' in str(out_dir) or '://' in str(path):
        return
    folder = out_dir
    while folder and not osp.isdir(folder):
        folder = osp.dirname(folder)
    try:
        st = os.statvfs(folder or '.')
        size = osp.getsize(path)
    except OSError:
        return
    free = st.f_bavail * st.f_frsize
    keep = hook.get('max_keep_ckpts', -1)
    delete_first = bool(hook.get('delete_before_save')) and keep == 1
    room = free + (size if delete_first else 0)
    if room >= size + LOG_ROOM:
        return
    mib = 1 << 20
    raise RunRefused(
        f'--resume: the disk of {out_dir} has {free / mib:.1f} MiB free, but the next '
        f'checkpoint needs about {size / mib:.1f} MiB (the size of {path}) plus '
        f'{LOG_ROOM / mib:.0f} MiB for logs: the run would stop at its first save. Nothing '
        'was written' + full_disk_hint(keep, path, delete_first))


def _check_finished(cfg, path: str, meta: dict) -> None:
    train_cfg = cfg.get('train_cfg') or {}
    for unit, key in (('epoch', 'max_epochs'), ('iter', 'max_iters')):
        done, total = meta.get(unit), train_cfg.get(key)
        if done is not None and total is not None and done >= total:
            raise RunFinished(
                f'--resume: nothing to do, the run is finished: {path} is at {unit} {done} '
                f'and train_cfg.{key}={total}. To train further, raise it, e.g. '
                f'--cfg-options train_cfg.{key}={total * 2}')


def check_fits_model(cfg, path: str, state: dict, meta: Optional[dict] = None) -> None:
    """Refuse a checkpoint whose weights do not fit the model ``cfg``
    builds (mmengine would warn per key, load what fits, then fail in the
    optimizer), naming every key and both shapes."""
    from mmaction.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmaction')):
        model = MODELS.build(cfg.model)
    mine = model.state_dict()
    params = {k for k, _ in model.named_parameters()}
    shapes = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(mine[k].shape)}'
              for k in sorted(set(state) & set(mine))
              if isinstance(state[k], torch.Tensor) and state[k].shape != mine[k].shape]
    missing = sorted(params - set(state))
    unexpected = sorted(set(state) - set(mine))
    # the teacher file and model shape the run was started with (checkpoint meta)
    from amd_mmaction.engine.hooks.teacher_identity import resumed_identity_problem
    identity = resumed_identity_problem(cfg, path, meta, model) if meta else None
    del model
    if not (shapes or missing or unexpected):
        if identity:
            raise RunRefused(f'{identity}. Nothing in the work dir was changed.')
        return
    def listed(items, n=40):
        return '; '.join(items[:n]) + (f'; ... and {len(items) - n} more' if len(items) > n else '')
    parts = []
    if shapes:
        parts.append(f'{len(shapes)} shapes differ: {listed(shapes)}')
    if missing:
        parts.append(f'{len(missing)} model weights are not in the checkpoint: {listed(missing)}')
    if unexpected:
        parts.append(f'{len(unexpected)} checkpoint weights are not in the model: '
                     f'{listed(unexpected)}')
    raise RunRefused(
        f'--resume: {path} does not fit the model of this config ({"; ".join(parts)}). '
        'Resume with the config the run was started with (the copy in the work dir), or '
        'start a new work dir. Nothing in the work dir was changed.')


def check_load_from(cfg) -> None:
    """Read ``load_from`` (any config): missing, unreadable and untrusted
    files are refused before the Runner exists. Then refuse ``load_from``
    of a pre-training checkpoint in a config whose
    model has a ``backbone`` (a fine-tuning Recognizer3D): its keys
    (student.*, encoder.*) match none of backbone.*, so mmengine would load
    nothing and train from random weights. The message gives the export
    command for this config."""
    path = cfg.get('load_from')
    if not path or cfg.get('resume') or '://' in str(path):
        return
    # read for every model: a missing, unreadable or untrusted file is refused
    # here, before the Runner writes anything; the Runner's load then takes
    # this read instead of reading the file again
    ckpt = read(path, 'load_from:')
    hand_over(path, ckpt)
    if 'backbone' not in (cfg.get('model') or {}):
        return
    from amd_mmaction.weights.head_count import backbone_heads_problem
    problem = backbone_heads_problem(cfg.model.backbone, ckpt, path)  # heads: no shape shows them
    if problem:
        raise RunRefused(f'load_from={path}: {problem}. Nothing was written')
    state = _state(ckpt)
    keys = [k for k in state if isinstance(k, str)]
    if any(k.startswith('backbone.') for k in keys):
        return
    found = sorted({k.split('.')[0] + '.*' for k in keys if k.startswith(PRETRAIN_PREFIXES)})
    if not found:
        return
    bb = cfg.model.backbone
    out = osp.splitext(path)[0] + '_mmaction.pth'
    cmd = ['python', 'tools/export_checkpoint.py', path, out]
    for flag, key in (('--num-frames', 'num_frames'), ('--img-size', 'img_size'),
                      ('--num-heads', 'num_heads')):
        if bb.get(key) is not None:
            cmd += [flag, str(bb[key])]
    if bb.get('use_mean_pooling', True) is False:
        cmd.append('--no-mean-pooling')
    raise RunRefused(
        f'load_from={path} is a pre-training checkpoint ({", ".join(found)}, no backbone.*): '
        f'none of its weights would load into this {cfg.model.get("type", "model")} and the '
        'backbone would train from random weights. Export it first:\n    '
        + ' '.join(shlex.quote(c) for c in cmd)
        + f'\nthen train with --cfg-options load_from={shlex.quote(out)} '
        f'(or set model.backbone.init_cfg=dict(type=\'AMDPretrained\', checkpoint={path!r}), '
        'which converts it while the model is built)')
