"""The reconstruction head: the pixel target and the pixel loss (method.md §2).

One owner for how a clip becomes tubelet tokens and back (``patchify`` /
``unpatchify``), how a target token is normalised (and un-normalised for
pictures), and the loss on the masked tokens, as mmpretrain's
``MAEPretrainHead``. The pre-trainer, the reconstruction pictures and the
reproduction's teacher gate all use it.

Token layout: tokens in raster order (t, h, w); within a token the values are
ordered (t, p, q, c): ``tubelet * patch * patch`` pixels of ``C`` channels.
"""
from typing import Sequence

import torch
import torch.nn as nn

from mmaction.registry import MODELS
from amd_mmaction.student.vit import gather_tokens

TARGET_NORMS = ('channel', 'patch', 'none')


def check_target_norm(norm: str, who: str = 'target_norm') -> None:
    if norm not in TARGET_NORMS:
        raise ValueError(f"{who} must be 'channel' or 'patch' (normalised tubelets) or "
                         f"'none' (raw 0-1 tubelets), got {norm!r}")


def patchify(pixels: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, N, tubelet*patch*patch, C) tubelet tokens."""
    B, C, T, H, W = pixels.shape
    t, h, w = T // tubelet, H // patch, W // patch
    x = pixels.reshape(B, C, t, tubelet, h, patch, w, patch)
    return x.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(B, t * h * w, tubelet * patch * patch, C)


def unpatchify(tokens: torch.Tensor, shape: Sequence[int], tubelet: int,
               patch: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: (B, N, P, C) or (B, N, P*C) tokens ->
    (B, C, T, H, W) with ``shape`` = (C, T, H, W)."""
    C, T, H, W = shape
    t, h, w = T // tubelet, H // patch, W // patch
    x = tokens.reshape(len(tokens), t, h, w, tubelet, patch, patch, C)
    return x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(len(tokens), C, T, H, W)


def normalise(tokens: torch.Tensor, norm: str = 'channel', eps: float = 1e-6) -> torch.Tensor:
    """(..., P, C) tokens -> (..., P*C) targets.

    ``'channel'`` (VideoMAE): each token normalised per channel over its P
    pixels, (x - mean) / (sqrt(unbiased var) + eps). ``'patch'`` (MAE's
    ``norm_pix_loss``): one mean and unbiased variance over all values of the
    token, (x - mean) / sqrt(var + eps). ``'none'`` (the authors' engine with
    ``normlize_target`` off): the 0-1 pixels untouched."""
    check_target_norm(norm, 'pixel target norm')
    if norm == 'none':
        return tokens.flatten(-2)
    if norm == 'patch':
        x = tokens.flatten(-2)
        return (x - x.mean(-1, keepdim=True)) / (x.var(-1, unbiased=True, keepdim=True) + eps).sqrt()
    x = tokens
    x = (x - x.mean(dim=-2, keepdim=True)) / (x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + eps)
    return x.flatten(-2)


def unnormalise(pred: torch.Tensor, tokens: torch.Tensor, norm: str = 'channel',
                eps: float = 1e-6) -> torch.Tensor:
    """Predicted targets (..., P*C) -> pixels (..., P, C) with the statistics
    of the input tokens ``tokens`` (..., P, C): the inverse of
    :func:`normalise`."""
    check_target_norm(norm, 'pixel target norm')
    shape = tokens.shape
    if norm == 'none':  # raw 0-1 targets: the predictions are pixels already
        return pred.reshape(shape)
    if norm == 'patch':
        flat = tokens.flatten(-2)
        mean = flat.mean(-1, keepdim=True)
        std = (flat.var(-1, unbiased=True, keepdim=True) + eps).sqrt()
        return (pred * std + mean).reshape(shape)
    mean = tokens.mean(-2, keepdim=True)
    std = tokens.var(-2, unbiased=True, keepdim=True).sqrt() + eps
    return pred.reshape(shape) * std + mean


def tubelet_target(pixels: torch.Tensor, tubelet: int, patch: int, eps: float = 1e-6,
                   norm: str = 'channel') -> torch.Tensor:
    """(B, C, T, H, W) pixels in 0-1 -> (B, N, tubelet*patch*patch*C) targets:
    :func:`patchify` then :func:`normalise`."""
    check_target_norm(norm, 'pixel target norm')
    return normalise(patchify(pixels, tubelet, patch), norm, eps)


@MODELS.register_module()
class ReconstructionHead(nn.Module):
    """Target and loss of the masked-pixel reconstruction.

    Args:
        loss: the criterion between predicted and target tokens
            (``PixelReconstructionLoss``: MSE or L1).
        target_norm: ``'channel'`` (VideoMAE, method.md §2), ``'patch'``
            (MAE's norm_pix_loss, the image setting) or ``'none'`` (raw 0-1
            pixels).
        tubelet_size, patch_size: the token shape; the pre-trainer fills them
            in from its student.
        eps: the normalisation's epsilon.
    """

    def __init__(self, loss: dict = dict(type='PixelReconstructionLoss'),
                 target_norm: str = 'channel', tubelet_size: int = 2, patch_size: int = 16,
                 eps: float = 1e-6):
        super().__init__()
        check_target_norm(target_norm, 'ReconstructionHead target_norm')
        self.target_norm = target_norm
        self.tubelet_size = int(tubelet_size)
        self.patch_size = int(patch_size)
        self.eps = eps
        self.loss_module = MODELS.build(loss)

    @property
    def values_per_token(self) -> int:
        """Values of one target token: tubelet * patch**2 * 3 channels."""
        return self.tubelet_size * self.patch_size ** 2 * 3

    def patchify(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, N, P, C) tokens."""
        return patchify(pixels, self.tubelet_size, self.patch_size)

    def unpatchify(self, tokens: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        """(B, N, P[, C]) tokens -> (B, C, T, H, W), ``shape`` = (C, T, H, W)."""
        return unpatchify(tokens, shape, self.tubelet_size, self.patch_size)

    def target(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) 0-1 pixels -> (B, N, P*C) target tokens."""
        return normalise(self.patchify(pixels), self.target_norm, self.eps)

    def unnormalise(self, pred: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Predicted targets (..., P*C) -> pixels (..., P, C), with the
        statistics of the clip's own tokens (..., P, C)."""
        return unnormalise(pred, tokens, self.target_norm, self.eps)

    def masked_target(self, pixels: torch.Tensor, mask_idx: torch.Tensor) -> torch.Tensor:
        """The targets of the masked tokens ``mask_idx`` (B, K): (B, K, P*C)."""
        with torch.no_grad():
            return gather_tokens(self.target(pixels.float()), mask_idx)

    def loss(self, pred: torch.Tensor, pixels: torch.Tensor,
             mask_idx: torch.Tensor) -> torch.Tensor:
        """The reconstruction loss of predictions ``pred`` (B, K, P*C) for the
        masked tokens ``mask_idx`` of the clips ``pixels`` (0-1)."""
        return self.loss_module(pred, self.masked_target(pixels, mask_idx))

    def extra_repr(self) -> str:
        return (f'target_norm={self.target_norm!r}, tubelet_size={self.tubelet_size}, '
                f'patch_size={self.patch_size}')
