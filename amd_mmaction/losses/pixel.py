"""The pixel reconstruction criterion (the target is the
:class:`~amd_mmaction.heads.ReconstructionHead`'s)."""
import torch.nn as nn
import torch.nn.functional as F

from mmaction.registry import MODELS


@MODELS.register_module()
class PixelReconstructionLoss(nn.Module):
    """MSE (or L1) between predicted and target tubelets, times
    ``loss_weight``."""

    def __init__(self, loss_type='mse', loss_weight=1.0, target_norm=None):
        super().__init__()
        if target_norm is not None:
            raise ValueError(
                f'PixelReconstructionLoss no longer takes target_norm (got {target_norm!r}): '
                f"the target belongs to the head: model.head=dict(type='ReconstructionHead', "
                f"target_norm={target_norm!r}, loss=dict(type='PixelReconstructionLoss'))")
        if loss_type not in ('mse', 'l1'):
            raise ValueError(f"loss_type must be 'mse' or 'l1', got {loss_type!r}")
        self.loss_type = loss_type
        self.loss_weight = loss_weight

    def forward(self, pred, target):
        fn = F.mse_loss if self.loss_type == 'mse' else F.l1_loss
        return self.loss_weight * fn(pred.float(), target.float())
