"""From pre-training to mmaction2 recognition: checkpoint export and the
``AMDPretrained`` backbone initialiser, RandAugment for clips."""
from .export import (AMDPretrainedInit, CheckpointMismatch, build_target,
                     convert_state, export_checkpoint, infer_backbone,
                     load_encoder)
from .randaugment import VideoRandAugment

__all__ = ['AMDPretrainedInit', 'CheckpointMismatch', 'build_target',
           'convert_state', 'export_checkpoint', 'infer_backbone', 'load_encoder',
           'VideoRandAugment']
