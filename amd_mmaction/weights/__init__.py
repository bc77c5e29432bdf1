"""Every checkpoint format in one place: safe reading and atomic writing
(:mod:`.io`), format detection and a one-read :class:`CheckpointFile` of
any encoder checkpoint (:mod:`.formats`), Hugging Face VideoMAE folders in
(:mod:`.hf`) and out (:mod:`.hf_export`) with their ``config.json``
(:mod:`.hf_config`), mmaction2 export and the ``AMDPretrained`` initialiser
(:mod:`.mmaction`) and the head count a checkpoint records
(:mod:`.head_count`)."""
from amd_mmaction.weights.formats import (CheckpointFile, load_encoder_weights, open_checkpoint,
                                          read_checkpoint, to_encoder_state)
from amd_mmaction.weights.io import (UntrustedCheckpointError, add_trust_argument, atomic_write,
                                     load_checkpoint_file, load_local_checkpoint)
from amd_mmaction.weights.mmaction import (AMDPretrainedInit, CheckpointMismatch, build_target,
                                           convert_state, export_checkpoint, infer_backbone,
                                           load_encoder)

__all__ = ['AMDPretrainedInit', 'CheckpointFile', 'CheckpointMismatch',
           'UntrustedCheckpointError', 'add_trust_argument', 'atomic_write', 'build_target',
           'convert_state', 'export_checkpoint', 'infer_backbone', 'load_checkpoint_file',
           'load_encoder', 'load_encoder_weights', 'load_local_checkpoint', 'open_checkpoint',
           'read_checkpoint', 'to_encoder_state']
