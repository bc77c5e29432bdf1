"""From pre-training to mmaction2 recognition: checkpoint export and the
``AMDPretrained`` backbone initialiser, RandAugment for clips, the
multi-view training head."""
from .export import (AMDPretrainedInit, CheckpointMismatch, build_target,
                     convert_state, export_checkpoint, infer_backbone,
                     load_encoder)
from .head import MultiViewTimeSformerHead
from .randaugment import VideoRandAugment

__all__ = ['AMDPretrainedInit', 'CheckpointMismatch', 'build_target',
           'convert_state', 'export_checkpoint', 'infer_backbone', 'load_encoder',
           'MultiViewTimeSformerHead', 'VideoRandAugment']
