"""The AMD pre-training model: student MAE + frozen teacher + alignment."""
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.logging import MessageHub, print_log
from mmengine.model import BaseModel

from mmaction.registry import MODELS


def mask_indices(mask: torch.Tensor) -> torch.Tensor:
    """(B, N) bool with the same count of True per row -> (B, K) indices of
    the True entries in raster order."""
    counts = mask.sum(1)
    if len(counts) and not bool((counts == counts[0]).all()):
        raise ValueError(f'masks in a batch must hide the same number of tokens, '
                         f'got counts {counts.tolist()}')
    k = int(counts[0]) if len(counts) else 0
    # A stable sort puts the True positions first, in ascending order.
    return torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)[:, :k]


@MODELS.register_module()
class AMDPretrainer(BaseModel):
    """Asymmetric Masked Distillation (and its VideoMAE / DMAE special cases).

    Args:
        student: VideoViT config of the student encoder.
        decoder: PixelDecoder config (``in_dims``/``num_tokens`` filled in).
        teacher: FrozenTeacher config, or None for plain VideoMAE (no
            teacher is built at all).
        alignment: FeatureAligner config (dims, heads, taps filled in from
            student and teacher); needed iff ``teacher`` is given.
            ``manner='none'`` drops both: plain VideoMAE.
        head: ReconstructionHead config: the pixel target (``target_norm``;
            ``'none'``: raw 0-1 tubelets, the authors' ``normlize_target``
            off) and the pixel loss; token shape filled in from the student.
        recfac: factor of the reconstruction loss (the authors' ``recfac``;
            ``dirfac``/``genfac`` are alignment keys).
        nonfinite: what to do with a non-finite loss before the optimizer
            step: ``'stop'`` raises naming the iteration and terms,
            ``'skip'`` drops the step and counts it.

    The teacher is held outside the module tree: it is never in
    ``parameters()`` (so never in the optimizer or DDP) nor in
    ``state_dict()`` (checkpoints stay small; it is rebuilt from its own
    file). ``.to()``/``.cuda()`` still move it.
    """

    def __init__(self, student: dict, decoder: dict, teacher: Optional[dict] = None,
                 alignment: Optional[dict] = None,
                 head: dict = dict(type='ReconstructionHead'),
                 data_preprocessor: Optional[dict] = None, nonfinite: str = 'stop',
                 recfac: float = 1.0, init_cfg=None, pixel_loss: Optional[dict] = None):
        if pixel_loss is not None:
            raise ValueError(
                'model.pixel_loss was replaced by model.head: write '
                "head=dict(type='ReconstructionHead', target_norm=<pixel_loss.target_norm>, "
                f"loss=dict(type='PixelReconstructionLoss', ...)) (got pixel_loss={pixel_loss})")
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmaction.ActionDataPreprocessor',
                                     mean=[123.675, 116.28, 103.53],
                                     std=[58.395, 57.12, 57.375], format_shape='NCTHW')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if nonfinite not in ('stop', 'skip'):
            raise ValueError(f"nonfinite must be 'stop' or 'skip', got {nonfinite!r}")
        self.nonfinite = nonfinite
        if not float(recfac) >= 0:
            raise ValueError(f'recfac must be a number >= 0, got {recfac!r}')
        self.recfac = float(recfac)
        # A buffer, so the count of skipped steps is saved in checkpoints and
        # survives a resume (an int attribute would restart at 0).
        self.register_buffer('skipped_steps_count', torch.zeros((), dtype=torch.long))
        self._skip_this_step = False
        self.student = MODELS.build(student)
        self.decoder = MODELS.build(dict(
            decoder, in_dims=self.student.embed_dims, num_tokens=self.student.num_tokens,
            out_dims=self.student.tubelet_size * self.student.patch_size ** 2 * 3))
        self.head = MODELS.build(dict(head, tubelet_size=self.student.tubelet_size,
                                      patch_size=self.student.patch_size))
        if alignment is not None and alignment.get('manner') == 'none':
            teacher = alignment = None  # plain VideoMAE: no teacher is built
        if (teacher is None) != (alignment is None):
            raise ValueError('teacher and alignment go together: give both (AMD/DMAE) '
                             'or neither (plain VideoMAE)')
        self._teacher = None
        self.aligner = None
        if teacher is not None:
            t = MODELS.build(teacher)
            if t.encoder.grid != self.student.grid or t.encoder.patch_size != self.student.patch_size:
                raise ValueError(f'teacher token grid {t.encoder.grid} (patch '
                                 f'{t.encoder.patch_size}) differs from the student '
                                 f'grid {self.student.grid} (patch {self.student.patch_size})')
            object.__setattr__(self, '_teacher', t)
            alignment = dict(alignment)
            alignment.setdefault('type', 'FeatureAligner')
            alignment.setdefault('teacher_taps', t.taps)
            self.aligner = MODELS.build(dict(
                alignment, student_dims=self.student.embed_dims,
                teacher_dims=t.encoder.embed_dims, num_tokens=self.student.num_tokens))
            self.student.check_taps(self.aligner.student_taps, 'student')
            if self.aligner.teacher_taps != t.taps:
                raise ValueError(
                    f'alignment teacher layers {self.aligner.teacher_taps} (teacher_taps, '
                    f'teacher_direct_taps, teacher_gen_taps) differ from the teacher taps '
                    f'{t.taps}: set model.teacher.taps={self.aligner.teacher_taps}')

    # -- the teacher lives outside the module tree -------------------------
    @property
    def teacher(self):
        return self._teacher

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self._teacher is not None:
            self._teacher._apply(fn, *args, **kwargs)
        return self

    # -- data ----------------------------------------------------------------
    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Undo the data preprocessor's normalisation: 0-1 pixels."""
        dp = self.data_preprocessor
        if getattr(dp, '_enable_normalize', False):
            x = x * dp.std + dp.mean
        return x / 255.0

    @staticmethod
    def stack_masks(data_samples, key: str, n_clips: int, device) -> torch.Tensor:
        """The ``key`` masks (``'mask_stu'`` / ``'mask_tea'``) of the data
        samples as one (n_clips, N) bool tensor (views flattened into clips)."""
        masks = [torch.as_tensor(np.asarray(getattr(ds, key))) for ds in data_samples]
        m = torch.stack(masks).to(device=device, dtype=torch.bool)
        return m.reshape(n_clips, -1)

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'loss'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            return self.reconstruct(inputs, data_samples)
        raise RuntimeError(f'AMDPretrainer supports mode "loss" and "tensor", got {mode!r}')

    def unpack(self, inputs, data_samples):
        """(inputs, data samples) -> (clips (B*views, C, T, H, W), student
        mask (B*views, N) bool), checked against the student's grid."""
        if inputs.ndim == 6:  # (B, views, C, T, H, W): repeated augmentation
            inputs = inputs.flatten(0, 1)
        if data_samples is None or not hasattr(data_samples[0], 'mask_stu'):
            raise ValueError('data samples carry no mask_stu: add AsymmetricTubeMask '
                             'and PackActionInputs(algorithm_keys=("mask_stu", '
                             '"mask_tea")) to the pipeline')
        mask_stu = self.stack_masks(data_samples, 'mask_stu', len(inputs), inputs.device)
        if mask_stu.shape[1] != self.student.num_tokens:
            raise ValueError(f'mask has {mask_stu.shape[1]} tokens, the student grid '
                             f'{self.student.grid} has {self.student.num_tokens}')
        return inputs, mask_stu

    def loss(self, inputs, data_samples) -> Dict[str, torch.Tensor]:
        x, mask_stu = self.unpack(inputs, data_samples)
        if not torch.isfinite(x).all():
            per_clip = torch.isfinite(x.reshape(len(data_samples), -1)).all(1)
            bad = [i for i, ok in enumerate(per_clip.tolist()) if not ok]
            names = [data_samples[i].metainfo.get(
                'filename', '<add filename to PackActionInputs meta_keys>') for i in bad]
            raise FloatingPointError(f'non-finite values (NaN/Inf) in the input batch: '
                                     f'clips {bad} ({names})')
        vis_idx = mask_indices(~mask_stu)
        mask_idx = mask_indices(mask_stu)
        taps = self.aligner.student_taps if self.aligner is not None else ()
        latent, feats = self.student(x, vis_idx, taps=taps)
        pred = self.decoder(latent, vis_idx, mask_idx)
        with torch.no_grad():
            pixels = self.pixels(x)
        losses = {'loss_recon': self.recfac * self.head.loss(pred, pixels, mask_idx)}
        if self._teacher is not None:
            mask_tea = self.stack_masks(data_samples, 'mask_tea', len(x), x.device)
            diff_idx = mask_indices(mask_stu & ~mask_tea)
            if self.aligner.use_generation and diff_idx.shape[1] == 0:
                raise ValueError(
                    f'alignment manner {self.aligner.manner!r} needs teacher-only tokens '
                    'but the masks have none (symmetric masking): use manner="direct"')
            tea_feats = self._teacher(x, torch.cat([vis_idx, diff_idx], 1))
            losses.update(self.aligner(feats, tea_feats, vis_idx, diff_idx))
        return losses

    @torch.no_grad()
    def reconstruct(self, inputs, data_samples):
        """Pixel predictions for the masked tokens, as normalised tubelets,
        with the masks used: dict(pred, mask_idx, vis_idx)."""
        x, mask_stu = self.unpack(inputs, data_samples)
        vis_idx, mask_idx = mask_indices(~mask_stu), mask_indices(mask_stu)
        latent, _ = self.student(x, vis_idx)
        return dict(pred=self.decoder(latent, vis_idx, mask_idx),
                    vis_idx=vis_idx, mask_idx=mask_idx)

    # -- non-finite losses are caught before the optimizer step --------------
    @property
    def skipped_steps(self) -> int:
        """Optimizer steps dropped for a non-finite loss, over the whole run
        (resumes included)."""
        return int(self.skipped_steps_count)

    def parse_losses(self, losses):
        """mmengine's sum of the loss terms, checked for NaN/Inf.

        The check lives here (not only in ``train_step``) because mmengine's
        DDP wrapper calls ``parse_losses`` and then steps itself. Ranks agree
        on the verdict (all-reduce), so none is left waiting in backward.
        Under ``'skip'`` the returned loss is a zero that reaches every
        trainable parameter: a DDP-wrapped step then sees zero gradients
        (AdamW moments and weight decay still advance); :meth:`train_step`
        (single process) skips the step exactly.
        """
        parsed, log_vars = super().parse_losses(losses)
        finite = torch.isfinite(parsed.detach()).float()
        from mmengine.dist import all_reduce, get_world_size
        if get_world_size() > 1:
            all_reduce(finite, op='min')
        self._skip_this_step = False
        if bool(finite > 0):
            log_vars['skipped_steps'] = self.skipped_steps_count.detach().float()
            return parsed, log_vars
        it = MessageHub.get_current_instance().get_info('iter', -1)
        terms = {k: float(v.detach().float().mean()) for k, v in losses.items()}
        if self.nonfinite == 'stop':
            raise FloatingPointError(
                f'non-finite loss at iteration {it}: {terms}. Lower the lr, '
                "enable grad clipping, or set model.nonfinite='skip'.")
        self.skipped_steps_count += 1
        self._skip_this_step = True
        print_log(f'skipped iteration {it}: non-finite loss {terms} '
                  f'({self.skipped_steps} skipped so far)', logger='current',
                  level=30)
        zero = sum((p * 0).sum() for p in self.parameters() if p.requires_grad)
        return zero, {'skipped_steps': self.skipped_steps_count.detach().float()}

    def train_step(self, data, optim_wrapper) -> Dict[str, torch.Tensor]:
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = self._run_forward(data, mode='loss')
        parsed, log_vars = self.parse_losses(losses)
        if self._skip_this_step:
            optim_wrapper.zero_grad()
            return log_vars
        optim_wrapper.update_params(parsed)
        return log_vars
