"""Feature alignment loss between projected student and teacher features."""
import torch.nn as nn
import torch.nn.functional as F

from mmaction.registry import MODELS


@MODELS.register_module()
class FeatureAlignmentLoss(nn.Module):
    """Mean over aligned layers of MSE (paper default) or L1 (Table 1e)."""

    def __init__(self, loss_type='mse', loss_weight=1.0):
        super().__init__()
        if loss_type not in ('mse', 'l1'):
            raise ValueError(f"loss_type must be 'mse' or 'l1', got {loss_type!r}")
        self.loss_type = loss_type
        self.loss_weight = loss_weight

    def forward(self, preds, targets):
        fn = F.mse_loss if self.loss_type == 'mse' else F.l1_loss
        losses = [fn(p.float(), t.float()) for p, t in zip(preds, targets)]
        return self.loss_weight * sum(losses) / len(losses)
