"""Pixel reconstruction target and loss (method.md §2)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmaction.registry import MODELS

TARGET_NORMS = ('channel', 'patch', 'none')


def _check_norm(norm, who):
    if norm not in TARGET_NORMS:
        raise ValueError(f"{who} must be 'channel' or 'patch' (normalised tubelets) or "
                         f"'none' (raw 0-1 tubelets), got {norm!r}")


def tubelet_target(pixels: torch.Tensor, tubelet: int, patch: int,
                   eps: float = 1e-6, norm: str = 'channel') -> torch.Tensor:
    """(B, C, T, H, W) pixels in 0-1 -> (B, N, tubelet*patch*patch*C),
    each token normalised per channel over its tubelet*patch*patch pixels
    with (x - mean) / (sqrt(unbiased var) + eps). Tokens in raster order
    (t, h, w); values ordered (t, p, q, c) within a token.

    ``norm='patch'`` is MAE's ``norm_pix_loss`` for images instead: one mean
    and unbiased variance over all values of the token (pixels and channels),
    (x - mean) / sqrt(var + eps). ``norm='none'`` is the authors' engine with
    ``normlize_target`` off: the 0-1 pixels in the same layout, untouched."""
    _check_norm(norm, 'pixel target norm')
    B, C, T, H, W = pixels.shape
    t, h, w = T // tubelet, H // patch, W // patch
    x = pixels.reshape(B, C, t, tubelet, h, patch, w, patch)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(B, t * h * w, tubelet * patch * patch, C)
    if norm == 'none':
        return x.flatten(2)
    if norm == 'patch':
        x = x.flatten(2)
        return (x - x.mean(-1, keepdim=True)) / (x.var(-1, unbiased=True, keepdim=True) + eps).sqrt()
    x = (x - x.mean(dim=-2, keepdim=True)) / (x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + eps)
    return x.flatten(2)


@MODELS.register_module()
class PixelReconstructionLoss(nn.Module):
    """MSE (or L1) between predicted and target tubelets.

    ``target_norm`` says how the pretrainer builds the target tokens (see
    :func:`tubelet_target`): ``'channel'`` (VideoMAE, method.md §2),
    ``'patch'`` (MAE's norm_pix_loss, the image setting) or ``'none'``
    (raw 0-1 pixels)."""

    def __init__(self, loss_type='mse', loss_weight=1.0, target_norm='channel'):
        super().__init__()
        if loss_type not in ('mse', 'l1'):
            raise ValueError(f"loss_type must be 'mse' or 'l1', got {loss_type!r}")
        _check_norm(target_norm, 'PixelReconstructionLoss target_norm')
        self.target_norm = target_norm
        self.loss_type = loss_type
        self.loss_weight = loss_weight

    def forward(self, pred, target):
        fn = F.mse_loss if self.loss_type == 'mse' else F.l1_loss
        return self.loss_weight * fn(pred.float(), target.float())
