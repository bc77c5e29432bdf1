"""A run remembers what it was started with.

Every checkpoint's ``meta`` records the teacher (``amd_teacher``: its file,
size and the fingerprint of the weights loaded, see
:func:`amd_mmaction.teacher.frozen.state_fingerprint`) and the model's
shape (``amd_model``: width, depth and heads of each encoder; heads change
no weight shape, so no weight check sees them). A ``--resume`` whose config
builds another teacher, or another shape, is refused naming both records:
the distillation targets would change mid-run and the loss jump. A teacher
change made on purpose is allowed with ``--cfg-options
allow_teacher_change=True`` (logged; the new teacher is recorded from then on).

:func:`resumed_identity_problem` is the check; tools/train.py runs it before
the Runner exists (``amd_mmaction.engine.preflight``), and
:class:`TeacherIdentityHook` (a default hook of ``configs/_base_/amd_runtime.py``)
writes the records and checks again when a Runner resumes by itself.
"""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmaction.registry import HOOKS

TEACHER_KEY = 'amd_teacher'
SHAPE_KEY = 'amd_model'
SWITCH = 'allow_teacher_change'


def _encoder_shape(encoder) -> Optional[dict]:
    blocks = getattr(encoder, 'blocks', None)
    if blocks is None or not len(blocks):
        return None
    attn = getattr(blocks[0], 'attn', None)
    return dict(embed_dims=getattr(encoder, 'embed_dims', None), depth=len(blocks),
                num_heads=getattr(attn, 'num_heads', None))


def teacher_record(model) -> Optional[dict]:
    """The teacher's identity (path, size, fingerprint, kind), or None for
    a model without a teacher (plain VideoMAE, a recogniser)."""
    teacher = getattr(model, 'teacher', None)
    identity = getattr(teacher, 'identity', None)
    return dict(identity) if isinstance(identity, dict) else None


def shape_record(model) -> dict:
    """Width, depth and heads of each encoder of ``model`` (student,
    backbone, teacher, as it has them)."""
    out = {}
    for name in ('student', 'backbone'):
        shape = _encoder_shape(getattr(model, name, None))
        if shape:
            out[name] = shape
    teacher = getattr(model, 'teacher', None)
    shape = _encoder_shape(getattr(teacher, 'encoder', None))
    if shape:
        out['teacher'] = dict(shape, taps=list(getattr(teacher, 'taps', ())))
    return out


def _short(record: Optional[dict]) -> str:
    if record is None:
        return 'no teacher'
    if record.get('fingerprint') is None:
        return 'a random teacher (model.teacher.checkpoint=None)'
    size = record.get('size')
    size = f', {size} bytes' if size is not None else ''
    kind = ', a fine-tuned classifier checkpoint' if record.get('kind') == 'classifier' else ''
    return f"{record.get('path')} (fingerprint {record['fingerprint'][:23]}{size}{kind})"


def resumed_identity_problem(cfg, path: str, meta: dict, model) -> Optional[str]:
    """Why resuming checkpoint ``path`` (its ``meta``) with the ``model``
    the config ``cfg`` builds is refused, or None. Checkpoints without the
    records (written before they existed, or by a config without the hook)
    are not checked. A teacher change passes with ``allow_teacher_change``
    (logged); a shape change never does."""
    if not isinstance(meta, dict):
        return None
    problems = []
    if SHAPE_KEY in meta:
        was, now = dict(meta[SHAPE_KEY] or {}), shape_record(model)
        if cfg.get(SWITCH):  # a teacher changed on purpose may have another shape
            was.pop('teacher', None)
            now.pop('teacher', None)
        diff = [f'{part}.{key}: run {was[part].get(key)} vs config {now[part].get(key)}'
                for part in sorted(set(was) & set(now))
                for key in sorted(set(was[part]) | set(now[part]))
                if was[part].get(key) != now[part].get(key)]
        diff += [f'{part}: only in the {"run" if part in was else "config"}'
                 for part in sorted(set(was) ^ set(now))]
        if diff:
            problems.append(
                f'--resume: {path} was trained with another model shape than this config '
                f'builds ({"; ".join(diff)}); heads change no weight shape, so the weights '
                'would load into an attention they never learned. Resume with the config '
                'the run was started with (the copy in the work dir)')
    changed = teacher_change(meta, model)
    if changed and not cfg.get(SWITCH):
        was, now = changed
        hint = f'model.teacher.checkpoint={was.get("path")!r}' if was else 'model.teacher=None'
        problems.append(
            f'--resume: {path} was trained with teacher {_short(was)}, but this config '
            f'builds teacher {_short(now)}: the distillation targets would change '
            f'mid-run. Resume with the teacher the run was started with ({hint}), or, '
            f'if the change is on purpose, add --cfg-options {SWITCH}=True')
    return ' | '.join(problems) if problems else None


def teacher_change(meta: dict, model):
    """(recorded teacher, model's teacher) when the checkpoint ``meta``
    records another teacher than ``model`` has, else None."""
    if not isinstance(meta, dict) or TEACHER_KEY not in meta:
        return None
    was, now = meta[TEACHER_KEY], teacher_record(model)
    fp = [r.get('fingerprint') if r else None for r in (was, now)]
    if (was is None) != (now is None) or fp[0] != fp[1]:
        return was, now
    return None


@HOOKS.register_module()
class TeacherIdentityHook(Hook):
    """Writes ``meta['amd_teacher']`` and ``meta['amd_model']`` into every
    checkpoint and, when the Runner resumes, refuses a checkpoint whose
    records differ from the model it built (:func:`resumed_identity_problem`)."""

    priority = 'NORMAL'

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = self._model(runner)
        meta = checkpoint.setdefault('meta', {})
        meta[TEACHER_KEY] = teacher_record(model)
        meta[SHAPE_KEY] = shape_record(model)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner.cfg.get('resume'):
            return  # load_from: the weights start a new run
        meta = checkpoint.get('meta') or {}
        path = runner.cfg.get('load_from') or 'the resumed checkpoint'
        problem = resumed_identity_problem(runner.cfg, path, meta, self._model(runner))
        if problem:
            from amd_mmaction.engine.preflight import RunRefused
            raise RunRefused(problem)
        changed = teacher_change(meta, self._model(runner))
        if changed:  # allowed: on purpose
            print_log(f'{SWITCH}=True: resuming {path}, trained with teacher '
                      f'{_short(changed[0])}, with teacher {_short(changed[1])}; the new '
                      'teacher is recorded from now on', logger='current', level=30)
