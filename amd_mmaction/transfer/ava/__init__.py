"""AVA spatio-temporal action detection with an AMD ViT backbone, without
mmdet or compiled mmcv ops (see docs/ava.md)."""
from amd_mmaction.transfer.ava.backbone import ViTTokenMap
from amd_mmaction.transfer.ava.detector import AVAPersonDetector, boxes_to_frame
from amd_mmaction.transfer.ava.fixture import make_ava_fixture
from amd_mmaction.transfer.ava.head import PersonRoIHead, assign_person_rois, box_iou
from amd_mmaction.transfer.ava.roi_align import RoIAlign, roi_align

__all__ = ['ViTTokenMap', 'AVAPersonDetector', 'boxes_to_frame',
           'make_ava_fixture', 'PersonRoIHead', 'assign_person_rois',
           'box_iou', 'RoIAlign', 'roi_align']
