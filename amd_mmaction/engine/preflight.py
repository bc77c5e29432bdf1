"""Checks tools/train.py makes before the Runner exists, so that a refused
``--resume`` / ``load_from`` leaves the work dir exactly as it was (the
Runner writes its config copy and a log folder as soon as it is built).

* ``--resume`` with nothing to resume, of a finished run, or of a
  checkpoint whose weights do not fit the configured model;
* ``load_from`` of a pre-training checkpoint in a fine-tuning config
  (nothing would load: the backbone would train from random weights).
"""
import os.path as osp
import shlex
from typing import Optional

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from amd_mmaction.engine.hooks.checkpoint import resolve_last_checkpoint

# key prefixes of pre-training checkpoints: ours (AMDPretrainer) and the
# official VideoMAE / AMD releases
PRETRAIN_PREFIXES = ('student.', 'decoder.', 'aligner.', 'encoder.')


class RunRefused(RuntimeError):
    """The run must not start; the message says why and what to do."""


class RunFinished(Exception):
    """``--resume`` of a run that has already trained all its epochs."""


def read(path: str) -> dict:
    """A checkpoint through mmengine's loader: the door ``load_from`` and
    ``--resume`` themselves use, with its safety policy."""
    if not osp.isfile(path):
        raise RunRefused(f'checkpoint {path} does not exist')
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
    ckpt = read(path)
    _check_finished(cfg, path, ckpt.get('meta') or {})
    check_fits_model(cfg, path, _state(ckpt))
    return path


def _check_finished(cfg, path: str, meta: dict) -> None:
    train_cfg = cfg.get('train_cfg') or {}
    for unit, key in (('epoch', 'max_epochs'), ('iter', 'max_iters')):
        done, total = meta.get(unit), train_cfg.get(key)
        if done is not None and total is not None and done >= total:
            raise RunFinished(
                f'--resume: nothing to do, the run is finished: {path} is at {unit} {done} '
                f'and train_cfg.{key}={total}. To train further, raise it, e.g. '
                f'--cfg-options train_cfg.{key}={total * 2}')


def check_fits_model(cfg, path: str, state: dict) -> None:
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
    del model
    if not (shapes or missing or unexpected):
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
    """Refuse ``load_from`` of a pre-training checkpoint in a config whose
    model has a ``backbone`` (a fine-tuning Recognizer3D): its keys
    (student.*, encoder.*) match none of backbone.*, so mmengine would load
    nothing and train from random weights. The message gives the export
    command for this config."""
    path = cfg.get('load_from')
    if not path or cfg.get('resume') or 'backbone' not in (cfg.get('model') or {}):
        return
    state = _state(read(path))
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
