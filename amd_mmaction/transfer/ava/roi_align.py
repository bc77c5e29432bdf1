"""RoIAlign (average mode) in plain torch, with the semantics of
``mmcv.ops.RoIAlign`` / ``torchvision.ops.roi_align``: bilinear samples on a
regular grid inside each bin, ``sampling_ratio`` samples per bin side (0:
``ceil(roi_size / output_size)``, chosen per RoI), ``aligned=True`` shifting
boxes by half a pixel so that pixel centres sit at ``i + 0.5``.

Average RoIAlign is separable: every sample point is (row y, column x) on a
grid, its bilinear weight is ``w(y) * w(x)`` and a point counts only if both
coordinates are in range. So each RoI reduces to two small interpolation
matrices, rows ``A_y`` (out_h, H) and columns ``A_x`` (out_w, W), and the
output is ``A_y @ F @ A_x^T`` per channel: exact, differentiable, and
without a compiled op.
"""
from typing import Tuple, Union

import torch
import torch.nn as nn


def _axis_weights(start: torch.Tensor, length: torch.Tensor, bins: int,
                  size: int, sampling_ratio: int) -> torch.Tensor:
    """Interpolation matrix (K, bins, size) along one axis.

    ``start``/``length`` (K,) are the RoI extent in feature coordinates.
    Row ``p`` averages the bilinear weights of the samples of bin ``p``.
    """
    k = start.shape[0]
    bin_len = length / bins
    if sampling_ratio > 0:
        grid = torch.full_like(start, float(sampling_ratio))
    else:
        grid = torch.ceil(length / bins)
    g_max = max(int(grid.max().item()) if k else 1, 1)
    p = torch.arange(bins, dtype=start.dtype, device=start.device)
    i = torch.arange(g_max, dtype=start.dtype, device=start.device)
    # (K, bins, g_max) sample coordinates; samples i >= grid are padding.
    pos = (start[:, None, None] + p[None, :, None] * bin_len[:, None, None]
           + (i[None, None, :] + 0.5) * (bin_len / grid.clamp(min=1))[:, None, None])
    used = (i[None, None, :] < grid[:, None, None]).to(start.dtype)
    # Samples outside [-1, size] contribute zero (mmcv/torchvision rule).
    inside = ((pos >= -1.0) & (pos <= size)).to(start.dtype)
    pos = pos.clamp(min=0)
    low = pos.floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    frac = torch.where(at_edge, torch.zeros_like(pos), pos - low.to(pos.dtype))
    scale = used * inside / grid.clamp(min=1)[:, None, None]
    weights = start.new_zeros(k, bins, g_max, size)
    weights.scatter_add_(3, low[..., None], ((1 - frac) * scale)[..., None])
    weights.scatter_add_(3, high[..., None], (frac * scale)[..., None])
    return weights.sum(2)


def roi_align(feat: torch.Tensor, rois: torch.Tensor,
              output_size: Union[int, Tuple[int, int]],
              spatial_scale: float = 1.0, sampling_ratio: int = 0,
              aligned: bool = True) -> torch.Tensor:
    """Average RoIAlign.

    Args:
        feat: (N, C, H, W) feature maps.
        rois: (K, 5) rows ``(batch_index, x1, y1, x2, y2)`` in input-image
            pixels; ``spatial_scale`` maps them onto ``feat``.
        output_size: bins per side, int or (out_h, out_w).

    Returns:
        (K, C, out_h, out_w).
    """
    if feat.ndim != 4:
        raise ValueError(f'roi_align expects feat (N, C, H, W), got {tuple(feat.shape)}')
    if rois.ndim != 2 or rois.shape[1] != 5:
        raise ValueError('roi_align expects rois (K, 5) as '
                         f'(batch_index, x1, y1, x2, y2), got {tuple(rois.shape)}')
    out_h, out_w = ((output_size, output_size) if isinstance(output_size, int)
                    else tuple(output_size))
    if sampling_ratio < 0:
        raise ValueError(f'sampling_ratio must be >= 0, got {sampling_ratio}')
    n, c, h, w = feat.shape
    if rois.shape[0] == 0:
        return feat.new_zeros(0, c, out_h, out_w)
    rois = rois.to(feat.dtype)
    offset = 0.5 if aligned else 0.0
    x1, y1 = rois[:, 1] * spatial_scale - offset, rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale - offset - x1
    roi_h = rois[:, 4] * spatial_scale - offset - y1
    if not aligned:  # legacy mode: degenerate boxes count as 1 pixel
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    a_y = _axis_weights(y1, roi_h, out_h, h, sampling_ratio)
    a_x = _axis_weights(x1, roi_w, out_w, w, sampling_ratio)
    index = rois[:, 0].long()
    if index.min() < 0 or index.max() >= n:
        raise ValueError(f'roi batch indices must be in [0, {n}), got '
                         f'{index.min().item()}..{index.max().item()}')
    out = None
    for b in index.unique().tolist():
        sel = (index == b).nonzero(as_tuple=True)[0]
        part = torch.einsum('kyh,chw,kxw->kcyx', a_y[sel], feat[b], a_x[sel])
        if out is None:  # the einsum's dtype: bf16/fp16 under autocast
            out = part.new_zeros(rois.shape[0], c, out_h, out_w)
        out[sel] = part
    return out


class RoIAlign(nn.Module):
    """Module form of :func:`roi_align` (average mode, like
    ``mmcv.ops.RoIAlign(pool_mode='avg')``)."""

    def __init__(self, output_size, spatial_scale=1.0, sampling_ratio=0,
                 aligned=True):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = aligned

    def forward(self, feat, rois):
        return roi_align(feat, rois, self.output_size, self.spatial_scale,
                         self.sampling_ratio, self.aligned)

    def extra_repr(self):
        return (f'output_size={self.output_size}, spatial_scale={self.spatial_scale}, '
                f'sampling_ratio={self.sampling_ratio}, aligned={self.aligned}')

