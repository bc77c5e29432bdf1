"""Every checkpoint format in one place: safe reading and atomic writing
(:mod:`.io`), format detection and reading of any encoder checkpoint
(:mod:`.formats`), Hugging Face VideoMAE folders in (:mod:`.hf`) and out
(:mod:`.hf_export`), mmaction2 export and the ``AMDPretrained`` initialiser
(:mod:`.mmaction`) and the head count a checkpoint records
(:mod:`.head_count`)."""
from amd_mmaction.weights.formats import load_encoder_weights, read_checkpoint, to_encoder_state
from amd_mmaction.weights.io import (UntrustedCheckpointError, add_trust_argument,
                                     load_checkpoint_file)
from amd_mmaction.weights.mmaction import (AMDPretrainedInit, CheckpointMismatch, build_target,
                                           convert_state, export_checkpoint, infer_backbone,
                                           load_encoder)

__all__ = ['AMDPretrainedInit', 'CheckpointMismatch', 'UntrustedCheckpointError',
           'add_trust_argument', 'build_target', 'convert_state', 'export_checkpoint',
           'infer_backbone', 'load_checkpoint_file', 'load_encoder', 'load_encoder_weights',
           'read_checkpoint', 'to_encoder_state']
