"""AVA spatio-temporal action detection with an AMD ViT backbone, without
mmdet or compiled mmcv ops (see docs/ava.md)."""
from .backbone import ViTTokenMap
from .detector import AVAPersonDetector, boxes_to_frame
from .fixture import make_ava_fixture
from .head import PersonRoIHead, assign_person_rois, box_iou
from .roi_align import RoIAlign, roi_align

__all__ = ['ViTTokenMap', 'AVAPersonDetector', 'boxes_to_frame',
           'make_ava_fixture', 'PersonRoIHead', 'assign_person_rois',
           'box_iou', 'RoIAlign', 'roi_align']
