"""Checkpoint saving that never leaves a run without a complete checkpoint,
and a ``last_checkpoint`` that follows its work dir when it is moved or
copied.

mmengine's ``CheckpointHook`` deletes the oldest kept checkpoint *before*
it saves the new one and then writes ``last_checkpoint`` with a plain
``open``: with ``max_keep_ckpts=1`` a SIGKILL or a full disk during the save
leaves no checkpoint at all, and ``last_checkpoint`` naming a deleted file.
:class:`SafeCheckpointHook` orders the steps so that every moment between
them is resumable:

1. write the new checkpoint (temporary file + fsync + rename, see
   ``weights.io.atomic_write``): killed here, the previous one is untouched;
2. replace ``last_checkpoint`` (atomically, a name relative to the work
   dir): killed here, it still names the previous, existing checkpoint;
3. delete the checkpoints beyond ``max_keep_ckpts``.

``save_best`` gets the same order: the new best, then the old one deleted.
"""
import errno
import glob
import os
import os.path as osp
from collections import deque
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from mmaction.registry import HOOKS

from amd_mmaction.weights.io import atomic_write

POINTER = 'last_checkpoint'


class CheckpointSaveError(OSError):
    """A checkpoint (or ``last_checkpoint``) could not be written."""


def pointer_name(work_dir: str, path: str) -> str:
    """What ``last_checkpoint`` should hold for ``path``: a name relative to
    ``work_dir`` when the file is inside it (the folder can then be moved or
    copied), else ``path`` as is (an ``out_dir`` elsewhere, a remote URI)."""
    if '://' in path:
        return path
    rel = osp.relpath(osp.abspath(path), osp.abspath(work_dir))
    return path if rel.startswith(os.pardir) else rel


def write_last_checkpoint(work_dir: str, path: str) -> None:
    pointer = osp.join(work_dir, POINTER)
    try:
        atomic_write(pointer, pointer_name(work_dir, path), 'w', encoding='utf-8')
    except OSError as err:
        raise CheckpointSaveError(
            err.errno, f'could not update {pointer} to name {path} ({err.strerror or err}); '
            f'{path} is complete, and {pointer} still names the previous checkpoint') from err


def resolve_last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``work_dir/last_checkpoint`` names, resolved in
    ``work_dir`` itself; None when there is no ``last_checkpoint``.

    Relative names (written by :func:`write_last_checkpoint`) are joined to
    ``work_dir``. An absolute name (mmengine's own hook, older runs) is read
    by its base name in ``work_dir`` when that file is there: a moved work
    dir still resumes, and a copied one resumes from its own file, not from
    the original folder's. Raises FileNotFoundError when the named file is
    nowhere."""
    pointer = osp.join(work_dir, POINTER)
    if not osp.isfile(pointer):
        return None
    with open(pointer, encoding='utf-8') as f:
        name = f.read().strip()
    if not name:
        raise FileNotFoundError(f'{pointer} is empty; expected the name of a checkpoint in '
                                f'{work_dir}. Resume a given one with --resume PATH.')
    if '://' in name:
        return name
    if not osp.isabs(name):
        path = osp.join(work_dir, name)
    else:
        local = osp.join(work_dir, osp.basename(name))
        path = local if osp.isfile(local) else name
    if not osp.isfile(path):
        found = sorted(osp.basename(p) for p in glob.glob(osp.join(glob.escape(work_dir), '*.pth')))
        raise FileNotFoundError(
            f'{pointer} names {name!r}, which does not exist (looked for {path}); '
            f'checkpoints in {work_dir}: {found or "none"}. Resume one of them with '
            '--resume PATH.')
    return path


def full_disk_hint(max_keep_ckpts: int, previous: Optional[str],
                   delete_before_save: bool = False) -> str:
    """What to do when a checkpoint does not fit on the disk (the sentence
    after an ENOSPC), for the hook's ``max_keep_ckpts`` / ``delete_before_save``
    and the previous checkpoint (None: none yet)."""
    if max_keep_ckpts == 1 and previous and not delete_before_save:
        return (f'. This disk has no room for a second checkpoint beside {previous}, and '
                'a save needs room for two (the previous checkpoint is deleted only after '
                'the new one is complete); max_keep_ckpts is already 1. Free space, or '
                'accept the risk and resume with --cfg-options '
                'default_hooks.checkpoint.delete_before_save=True: the previous checkpoint '
                'is then deleted before each save, and a kill or a failure during a save '
                'leaves no checkpoint at all')
    if max_keep_ckpts > 1:
        return (f'. The disk is full: free space, or set a smaller max_keep_ckpts (now '
                f'{max_keep_ckpts}; a save needs room for one checkpoint more)')
    if max_keep_ckpts <= 0:
        return ('. The disk is full: free space, or set max_keep_ckpts (every checkpoint '
                'is kept now)')
    return '. The disk is full: free space'


def _find_latest_checkpoint(path: str) -> Optional[str]:
    if not osp.isfile(osp.join(path, POINTER)):
        print_log(f'Did not find {POINTER} to be resumed in {path}.', logger='current')
    return resolve_last_checkpoint(path)


def install_resolver() -> None:
    """mmengine's Runner (``resume=True`` without a path) reads
    ``last_checkpoint`` as an absolute path; read it with
    :func:`resolve_last_checkpoint` instead."""
    import mmengine.runner.runner as runner_mod
    runner_mod.find_latest_checkpoint = _find_latest_checkpoint


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) that saves first, then points
    ``last_checkpoint`` at the new file, and only then deletes checkpoints
    beyond ``max_keep_ckpts``. A failed write (``ENOSPC``...) raises
    :class:`CheckpointSaveError` naming the file, leaving the previous
    checkpoint and ``last_checkpoint`` as they were.

    Saving so needs room for one checkpoint more than ``max_keep_ckpts``. On
    a disk that holds only one, ``delete_before_save=True`` (with
    ``max_keep_ckpts=1``) deletes the previous checkpoint *before* the save,
    as mmengine's hook does. Its risk: a kill, a crash or a failed write
    during the save then leaves no checkpoint at all (the run starts again
    from scratch)."""

    def __init__(self, *args, delete_before_save: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if delete_before_save and self.max_keep_ckpts != 1:
            raise ValueError(
                f'SafeCheckpointHook: delete_before_save=True needs max_keep_ckpts=1 (got '
                f'{self.max_keep_ckpts}): it is for a disk that holds one checkpoint only')
        self.delete_before_save = bool(delete_before_save)

    def _remove(self, path):
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # deepspeed saves folders
            self.file_backend.rmtree(path)

    def _full_disk_hint(self, previous) -> str:
        return full_disk_hint(self.max_keep_ckpts, previous, self.delete_before_save)

    def _save_checkpoint_with_step(self, runner, step, meta):
        stale, kept = [], None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            ids = list(self.keep_ckpt_ids) + [step]
            stale, kept = ids[:-self.max_keep_ckpts], ids[-self.max_keep_ckpts:]
            # The new checkpoint records the stale ones too: killed before they
            # are deleted, the resumed run deletes them (CheckpointHook.before_train).
            runner.message_hub.update_info('keep_ckpt_ids', ids)
        filename = self.filename_tmpl.format(step)
        path = self.file_backend.join_path(self.out_dir, filename)
        deleted = []
        if self.delete_before_save and is_main_process():
            for old in stale:  # the risk the user chose: no checkpoint until this save ends
                old_path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
                if old != step and (self.file_backend.isfile(old_path)
                                    or self.file_backend.isdir(old_path)):
                    self._remove(old_path)
                    deleted.append(old_path)
            if deleted:
                runner.logger.info(f'delete_before_save=True: deleted {", ".join(deleted)} '
                                   f'before saving {path}')
            stale = []
        self.last_ckpt = path
        runner.message_hub.update_info('last_ckpt', path)
        # exact resume: every rank's random streams into rank 0's checkpoint
        gather = getattr(runner.train_loop, 'gather_random_state', None)
        if gather is not None:
            gather()
        try:
            runner.save_checkpoint(
                self.out_dir, filename, self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta,
                by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        except OSError as err:
            try:
                previous = resolve_last_checkpoint(runner.work_dir)
            except OSError:  # a broken pointer must not hide the write error
                previous = None
            if deleted:
                state = (f'nothing of it was kept, and delete_before_save=True deleted '
                         f'{", ".join(deleted)} before it: no checkpoint is left')
            else:
                state = (f'nothing of it was kept, the last complete checkpoint is still '
                         f'{previous or "none (this was the first save)"}')
            hint = self._full_disk_hint(previous) \
                if err.errno in (errno.ENOSPC, errno.EDQUOT) else ''
            raise CheckpointSaveError(
                err.errno, f'could not write checkpoint {path}: {err.strerror or err}; '
                f'{state}{hint}') from err
        if kept is not None:
            self.keep_ckpt_ids = deque(kept, self.max_keep_ckpts)
            runner.message_hub.update_info('keep_ckpt_ids', kept)
        if not is_main_process():
            return
        write_last_checkpoint(runner.work_dir, path)
        for old in stale:
            if old == step:
                continue
            self._remove(self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old)))

    def _save_best_checkpoint(self, runner, metrics):
        """mmengine's ``save_best`` deletes the previous best checkpoint and
        then writes the new one: killed or out of space in between, the run
        has no best checkpoint. Here the new best is written first (atomic,
        as above) and the previous one deleted only after that."""
        if not self.save_best:
            return
        step = runner.epoch if self.by_epoch else runner.iter
        unit = 'epoch' if self.by_epoch else 'iter'
        meta = dict(epoch=runner.epoch, iter=runner.iter)
        if 'auto' in self.key_indicators:
            self._init_rule(self.rules, [next(iter(metrics))])
        single = len(self.key_indicators) == 1
        updated = False
        for key, rule in zip(self.key_indicators, self.rules):
            score = metrics[key]
            score_key = 'best_score' if single else f'best_score_{key}'
            best = runner.message_hub.get_info(score_key, self.init_value_map[rule])
            if score is None or not self.is_better_than[key](score, best):
                continue
            updated = True
            previous = self.best_ckpt_path if single else self.best_ckpt_path_dict[key]
            name = f'best_{key}_{self.filename_tmpl.format(step)}'.replace('/', '_')
            path = self.file_backend.join_path(self.out_dir, name)
            # the new checkpoint carries its own score and name (resume reads them)
            runner.message_hub.update_info(score_key, score)
            runner.message_hub.update_info('best_ckpt' if single else f'best_ckpt_{key}', path)
            try:
                runner.save_checkpoint(self.out_dir, filename=name,
                                       file_client_args=self.file_client_args,
                                       save_optimizer=False, save_param_scheduler=False,
                                       meta=meta, by_epoch=False, backend_args=self.backend_args)
            except OSError as err:
                runner.message_hub.update_info(score_key, best)
                raise CheckpointSaveError(
                    err.errno, f'could not write best checkpoint {path}: {err.strerror or err}; '
                    f'nothing of it was kept, the previous best is still '
                    f'{previous or "none (this was the first)"}') from err
            if single:
                self.best_ckpt_path = path
            else:
                self.best_ckpt_path_dict[key] = path
            runner.logger.info(f'The best checkpoint with {score:0.4f} {key} at {step} {unit} '
                               f'is saved to {name}.')
            if previous and previous != path and is_main_process():
                if self.file_backend.isfile(previous):
                    self.file_backend.remove(previous)
                elif self.file_backend.isdir(previous):
                    self.file_backend.rmtree(previous)
                runner.logger.info(f'The previous best checkpoint {previous} is removed')
        # as mmengine: save the regular checkpoint again, so that it records the new best
        if updated and self.last_ckpt is not None:
            self._save_checkpoint_with_step(runner, step, meta)
