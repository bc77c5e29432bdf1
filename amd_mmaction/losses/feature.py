"""Feature alignment loss between projected student and teacher features."""
import torch.nn as nn
import torch.nn.functional as F

from mmaction.registry import MODELS

# Our names and the authors' `--align_loss` names (l2, l1, sml1).
ALIGN_LOSSES = {'mse': 'mse', 'l2': 'mse', 'l1': 'l1',
                'smooth_l1': 'smooth_l1', 'sml1': 'smooth_l1'}


@MODELS.register_module()
class FeatureAlignmentLoss(nn.Module):
    """Mean over aligned layers of a per-element-mean loss: MSE (paper
    default, the authors' ``l2``), L1 (Table 1e) or smooth L1 (the authors'
    ``sml1``: ``nn.SmoothL1Loss()``, i.e. beta 1.0, mean over elements)."""

    def __init__(self, loss_type='mse', loss_weight=1.0, beta=1.0):
        super().__init__()
        if loss_type not in ALIGN_LOSSES:
            raise ValueError(f'FeatureAlignmentLoss loss_type must be one of '
                             f'{tuple(ALIGN_LOSSES)}, got {loss_type!r}')
        if beta <= 0:
            raise ValueError(f'FeatureAlignmentLoss beta must be > 0, got {beta!r}')
        self.loss_type = ALIGN_LOSSES[loss_type]
        self.loss_weight = loss_weight
        self.beta = beta

    def _one(self, p, t):
        if self.loss_type == 'mse':
            return F.mse_loss(p, t)
        if self.loss_type == 'l1':
            return F.l1_loss(p, t)
        return F.smooth_l1_loss(p, t, beta=self.beta)

    def forward(self, preds, targets):
        losses = [self._one(p.float(), t.float()) for p, t in zip(preds, targets)]
        return self.loss_weight * sum(losses) / len(losses)
