"""The frozen teacher: a pre-trained encoder used only for targets."""
import warnings
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn

from mmaction.registry import MODELS
from amd_mmaction.weights.formats import (check_stored_pos_embed, load_encoder_weights,
                         read_checkpoint, to_encoder_state)
from amd_mmaction.weights.hf import check_hf_config

_DTYPES = {None: None, 'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


@MODELS.register_module()
class FrozenTeacher(nn.Module):
    """Wraps an encoder config and its pre-trained checkpoint.

    The encoder is frozen (no grad, eval mode at all times) and truncated
    after the deepest tap: deeper blocks are never run, so they are not
    kept. Its final norm is not used (targets are raw block outputs).

    Args:
        encoder: VideoViT config of the teacher.
        taps: 1-based teacher layers whose outputs are targets.
        checkpoint: pre-trained weights (VideoMAE/AMD/MAE/mmaction2 format).
            None gives a random teacher (tests only) with a warning.
        autocast: None/'fp32', 'bf16' or 'fp16' to run the teacher under
            autocast (targets are returned in fp32).
    """

    def __init__(self, encoder: dict, taps: Sequence[int],
                 checkpoint: Optional[str] = None, autocast: Optional[str] = None):
        super().__init__()
        if autocast not in _DTYPES:
            raise ValueError(f'teacher autocast must be one of {list(_DTYPES)}, got {autocast!r}')
        self.autocast_dtype = _DTYPES[autocast]
        encoder = dict(encoder, final_norm=False, drop_path_rate=0.0)
        self.encoder = MODELS.build(encoder)
        self.taps = self.encoder.check_taps(taps, 'teacher')
        self.checkpoint = checkpoint
        if checkpoint is None:
            warnings.warn('FrozenTeacher has no checkpoint: the teacher is random. '
                          'Only tests should do this.')
        else:
            raw = read_checkpoint(checkpoint)
            check_hf_config(checkpoint, self.encoder)  # HF config.json vs this encoder
            check_stored_pos_embed(raw, self.encoder, checkpoint)
            state = to_encoder_state(raw, checkpoint)
            # The teacher has no final norm; ignore one in the checkpoint.
            state = {k: v for k, v in state.items() if not k.startswith('norm.')}
            load_encoder_weights(self.encoder, state, checkpoint)
        del self.encoder.blocks[max(self.taps):]
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True):
        return super().train(False)  # always eval: no dropout/drop path

    @torch.no_grad()
    def forward(self, x: torch.Tensor, token_idx: torch.Tensor) -> Dict[int, torch.Tensor]:
        dtype = self.autocast_dtype
        with torch.autocast(x.device.type, dtype=dtype or torch.float32,
                            enabled=dtype is not None):
            _, feats = self.encoder(x, token_idx, taps=self.taps, final=False)
        return {k: v.float() for k, v in feats.items()}
