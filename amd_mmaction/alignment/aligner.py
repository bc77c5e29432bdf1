"""Feature alignment between student and teacher layers (method.md §4)."""
from typing import Dict

import torch
import torch.nn as nn

from mmaction.registry import MODELS
from .generator import FeatureGenerator

MANNERS = ('serial', 'parallel', 'direct', 'generation')


@MODELS.register_module()
class FeatureAligner(nn.Module):
    """Projections phi_l (Linear, no bias) and generators G_l per aligned
    layer pair, and the two alignment losses.

    ``serial`` (paper default): G_l consumes phi_l's output, which is also
    matched directly. ``parallel``: G_l has its own projection.
    ``direct`` / ``generation``: only one of the two losses.
    """

    def __init__(self, student_dims, teacher_dims, teacher_heads,
                 student_taps=(6, 12), teacher_taps=(12, 24), manner='serial',
                 generator_depth=2, num_tokens=1568,
                 loss=dict(type='FeatureAlignmentLoss')):
        super().__init__()
        if manner not in MANNERS:
            raise ValueError(f'alignment manner {manner!r} is not one of {MANNERS}')
        if len(student_taps) != len(teacher_taps) or not student_taps:
            raise ValueError(f'student_taps {tuple(student_taps)} and teacher_taps '
                             f'{tuple(teacher_taps)} must pair up one to one')
        self.manner = manner
        self.student_taps = tuple(student_taps)
        self.teacher_taps = tuple(teacher_taps)
        self.use_direct = manner in ('serial', 'parallel', 'direct')
        self.use_generation = manner in ('serial', 'parallel', 'generation')
        n = len(student_taps)
        self.projections = nn.ModuleList(
            nn.Linear(student_dims, teacher_dims, bias=False) for _ in range(n))
        if manner == 'parallel':
            self.generator_projections = nn.ModuleList(
                nn.Linear(student_dims, teacher_dims, bias=False) for _ in range(n))
        if self.use_generation:
            self.generators = nn.ModuleList(
                FeatureGenerator(teacher_dims, teacher_heads, generator_depth, num_tokens)
                for _ in range(n))
        for m in self.modules():
            if isinstance(m, nn.Linear) and m.bias is None:
                nn.init.xavier_uniform_(m.weight)
        self.loss = MODELS.build(loss)

    def forward(self, student_feats: Dict[int, torch.Tensor],
                teacher_feats: Dict[int, torch.Tensor], vis_idx: torch.Tensor,
                diff_idx: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Student features are on V tokens; teacher features on [V, D]."""
        n_vis = vis_idx.shape[1]
        dir_pred, dir_tgt, gen_pred, gen_tgt = [], [], [], []
        for i, (ls, lt) in enumerate(zip(self.student_taps, self.teacher_taps)):
            z, t = student_feats[ls], teacher_feats[lt]
            p = self.projections[i](z)
            if self.use_direct:
                dir_pred.append(p)
                dir_tgt.append(t[:, :n_vis])
            if self.use_generation:
                g_in = (self.generator_projections[i](z)
                        if self.manner == 'parallel' else p)
                gen_pred.append(self.generators[i](g_in, vis_idx, diff_idx))
                gen_tgt.append(t[:, n_vis:])
        losses = {}
        if dir_pred:
            losses['loss_dir'] = self.loss(dir_pred, dir_tgt)
        if gen_pred:
            losses['loss_gen'] = self.loss(gen_pred, gen_tgt)
        return losses
