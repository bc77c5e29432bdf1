"""AVA spatio-temporal action detector without mmdet: a ViT token-map
backbone, person RoIs from the data samples (ground truth + detected person
proposals in training, proposals at test) and :class:`PersonRoIHead`.

Inputs and outputs are those of mmaction2's FastRCNN route: data samples from
``AVADataset`` + ``PackActionInputs`` (``gt_instances``, ``proposals``, boxes
in clip pixels), predictions as ``pred_instances`` with ``bboxes``
normalised to the original frame and ``scores`` (num_boxes, num_classes),
which is what ``AVAMetric`` reads.
"""
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData

from mmaction.registry import MODELS

from amd_mmaction.transfer.ava.head import assign_person_rois


def _rois(boxes: List[torch.Tensor]) -> torch.Tensor:
    """Per-clip boxes -> (K, 5) rows (clip index, x1, y1, x2, y2)."""
    return torch.cat([torch.cat([b.new_full((len(b), 1), i), b], 1)
                      for i, b in enumerate(boxes)])


def boxes_to_frame(boxes: torch.Tensor, meta: dict) -> torch.Tensor:
    """Clip-pixel boxes -> boxes normalised to the original frame: undo the
    flip (the exact inverse of mmaction2's ``Flip``: x -> w - x), divide by
    the clip size, undo the crop (``crop_quadruple``)."""
    h, w = meta['img_shape']
    boxes = boxes.clone()
    if meta.get('flip', False):
        boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    boxes[:, 0::2] /= w
    boxes[:, 1::2] /= h
    crop = meta.get('crop_quadruple')
    if crop is not None:
        x0, y0, cw, ch = (float(v) for v in np.asarray(crop))
        boxes[:, 0::2] = boxes[:, 0::2] * cw + x0
        boxes[:, 1::2] = boxes[:, 1::2] * ch + y0
    return boxes


@MODELS.register_module()
class AVAPersonDetector(BaseModel):
    """Backbone token map -> person RoI head.

    Args:
        backbone: returns (B, C, T', h, w) (e.g. :class:`ViTTokenMap`).
        roi_head: :class:`PersonRoIHead` config.
        train_cfg: ``pos_iou_thr`` (0.9, mmaction2's AVA setting),
            ``max_rois`` per clip (32), ``add_gt_as_proposals`` (True).
        test_cfg: ``use_gt_if_no_proposals`` (False): score ground-truth
            boxes when a clip has no proposals (oracle-box evaluation).
    """

    def __init__(self, backbone: dict, roi_head: dict,
                 data_preprocessor: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, init_cfg=None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='ActionDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.roi_head = MODELS.build(roi_head)
        self.train_cfg = {**dict(pos_iou_thr=0.9, max_rois=32,
                                 add_gt_as_proposals=True), **(train_cfg or {})}
        self.test_cfg = {**dict(use_gt_if_no_proposals=False), **(test_cfg or {})}

    def forward(self, inputs: torch.Tensor, data_samples=None,
                mode: str = 'tensor'):
        if inputs.ndim != 5:
            raise ValueError('AVAPersonDetector expects clips (B, C, T, H, W) '
                             "(FormatShape input_format='NCTHW', collapse=True), "
                             f'got {tuple(inputs.shape)}')
        feat = self.backbone(inputs)
        if mode == 'tensor':
            return feat
        if data_samples is None:
            raise ValueError(f"mode={mode!r} needs data_samples with person boxes")
        if mode == 'loss':
            return self.loss(feat, data_samples)
        if mode == 'predict':
            return self.predict(feat, data_samples)
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")

    @staticmethod
    def _proposals(sample) -> Optional[torch.Tensor]:
        if 'proposals' not in sample:
            return None
        return sample.proposals.bboxes[:, :4].float()

    def loss(self, feat: torch.Tensor, data_samples) -> Dict[str, torch.Tensor]:
        boxes, targets = [], []
        for sample in data_samples:
            gt = sample.gt_instances
            b, t = assign_person_rois(
                gt.bboxes.float().to(feat.device), gt.labels.float().to(feat.device),
                self._proposals(sample), self.train_cfg['pos_iou_thr'],
                self.train_cfg['max_rois'], self.train_cfg['add_gt_as_proposals'])
            boxes.append(b)
            targets.append(t)
        logits = self.roi_head(feat, _rois(boxes))
        return self.roi_head.loss(logits, torch.cat(targets))

    def predict(self, feat: torch.Tensor, data_samples):
        boxes = []
        for sample in data_samples:
            props = self._proposals(sample)
            if props is None or not len(props):
                if not self.test_cfg['use_gt_if_no_proposals']:
                    raise ValueError(
                        f"clip {sample.metainfo.get('img_key', '?')} has no person "
                        'proposals: give AVADataset a proposal_file, or set '
                        'test_cfg.use_gt_if_no_proposals=True to score GT boxes')
                props = sample.gt_instances.bboxes.float()
            boxes.append(props.to(feat.device))
        scores = self.roi_head(feat, _rois(boxes)).sigmoid()
        for sample, b, s in zip(data_samples, boxes, scores.split([len(b) for b in boxes])):
            sample.pred_instances = InstanceData(
                bboxes=boxes_to_frame(b, sample.metainfo), scores=s)
        return data_samples
