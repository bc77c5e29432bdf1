"""Person RoI head for AVA: what mmaction2's ``SingleRoIExtractor3D`` +
``BBoxHeadAVA`` + ``MaxIoUAssignerAVA`` do, without mmdet or compiled mmcv.

RoIAlign (8x8) on the token map pooled over time, dropout, spatial max pool,
one linear layer over ``num_classes`` (81 for AVA: index 0 is the unused
background slot, so the 80 actions keep their AVA ids). Multi-label BCE on
the positive RoIs only, as ``BBoxHeadAVA.loss_and_target`` does.
"""
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmaction.registry import MODELS

from amd_mmaction.transfer.ava.roi_align import RoIAlign


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix (len(a), len(b)) of x1y1x2y2 boxes (no +1 pixel)."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area_a[:, None] + area_b[None] - inter
    return inter / union.clamp(min=1e-6)


def assign_person_rois(gt_bboxes: torch.Tensor, gt_labels: torch.Tensor,
                       proposals: torch.Tensor, pos_iou_thr: float = 0.9,
                       max_rois: int = 32, add_gt_as_proposals: bool = True
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Training RoIs of one clip and their multi-hot targets.

    Candidates are the ground-truth boxes (when ``add_gt_as_proposals``)
    followed by the proposals; a candidate is positive when its best IoU with
    a ground-truth person is >= ``pos_iou_thr`` and then takes that person's
    labels (MaxIoUAssignerAVA). Negatives carry no loss in BBoxHeadAVA, so
    only positives are returned, at most ``max_rois`` drawn at random
    (RandomSampler with pos_fraction=1).
    """
    if gt_labels.ndim != 2:
        raise ValueError('gt_labels must be multi-hot (num_gt, num_classes) '
                         '(AVADataset with multilabel=True), got shape '
                         f'{tuple(gt_labels.shape)}')
    cands = [gt_bboxes] if add_gt_as_proposals else []
    if proposals is not None and len(proposals):
        cands.append(proposals.to(gt_bboxes))
    if not cands or not len(gt_bboxes):
        return gt_bboxes.new_zeros(0, 4), gt_labels.new_zeros(0, gt_labels.shape[1])
    cands = torch.cat(cands)
    best_iou, best_gt = box_iou(gt_bboxes, cands).max(0)
    pos = (best_iou >= pos_iou_thr).nonzero(as_tuple=True)[0]
    if len(pos) > max_rois:
        pos = pos[torch.randperm(len(pos), device=pos.device)[:max_rois]]
    return cands[pos], gt_labels[best_gt[pos]]


@MODELS.register_module()
class PersonRoIHead(BaseModule):
    """RoI features + multi-label action classifier.

    Args:
        in_channels: channels of the token map.
        num_classes: classifier outputs incl. the background slot 0.
        background_class: ignore slot 0 in the loss (AVA).
        roi_size: RoIAlign bins per side (8 in the paper).
        featmap_stride: input pixels per token (the ViT patch size).
        sampling_ratio, aligned: RoIAlign sampling (0 = adaptive).
        temporal_pool: 'avg' (pooled before RoIAlign: the same numbers,
            since average RoIAlign is linear) or 'max' (per frame slice).
        spatial_pool: 'max' (BBoxHeadAVA default) or 'avg' over the bins.
        dropout_ratio, dropout_before_pool: as BBoxHeadAVA.
    """

    def __init__(self, in_channels: int, num_classes: int = 81,
                 background_class: bool = True, roi_size: int = 8,
                 featmap_stride: int = 16, sampling_ratio: int = 0,
                 aligned: bool = True, temporal_pool: str = 'avg',
                 spatial_pool: str = 'max', dropout_ratio: float = 0.5,
                 dropout_before_pool: bool = True, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        for name, value in (('temporal_pool', temporal_pool),
                            ('spatial_pool', spatial_pool)):
            if value not in ('avg', 'max'):
                raise ValueError(f"{name} must be 'avg' or 'max', got {value!r}")
        self.num_classes = num_classes
        self.background_class = background_class
        self.temporal_pool = temporal_pool
        self.spatial_pool = spatial_pool
        self.dropout_before_pool = dropout_before_pool
        self.roi_align = RoIAlign(roi_size, 1.0 / featmap_stride,
                                  sampling_ratio, aligned)
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.fc_cls = nn.Linear(in_channels, num_classes)
        nn.init.xavier_normal_(self.fc_cls.weight)
        nn.init.zeros_(self.fc_cls.bias)

    def roi_features(self, feat: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """feat (B, C, T, h, w), rois (K, 5) -> (K, C, T', s, s); T' = 1
        after average pooling over time."""
        if self.temporal_pool == 'avg':
            return self.roi_align(feat.mean(2), rois).unsqueeze(2)
        b, c, t, h, w = feat.shape
        slices = feat.transpose(1, 2).reshape(b * t, c, h, w)
        idx = rois[:, :1] * t
        per_t = [self.roi_align(slices, torch.cat([idx + i, rois[:, 1:]], 1))
                 for i in range(t)]
        return torch.stack(per_t, 2).amax(2, keepdim=True)

    def forward(self, feat: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        x = self.roi_features(feat, rois)
        if self.dropout_before_pool:
            x = self.dropout(x)
        x = x.flatten(2)
        x = x.amax(2) if self.spatial_pool == 'max' else x.mean(2)
        if not self.dropout_before_pool:
            x = self.dropout(x)
        return self.fc_cls(x)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> Dict[str, torch.Tensor]:
        if self.background_class:
            logits, targets = logits[:, 1:], targets[:, 1:]
        keep = targets.sum(1) > 0
        logits, targets = logits[keep], targets[keep]
        if not len(logits):  # no positive RoI in the batch: zero, keep graph
            return dict(loss_action_cls=self.fc_cls.weight.sum() * 0)
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        with torch.no_grad():
            pred, true = logits.sigmoid() > 0.5, targets > 0.5
            hit = (pred & true).sum(1).float()
            recall = (hit / true.sum(1).clamp(min=1)).mean()
            prec = (hit / (pred.sum(1) + 1e-6)).mean()
        return {'loss_action_cls': loss, 'recall@thr=0.5': recall,
                'prec@thr=0.5': prec}
