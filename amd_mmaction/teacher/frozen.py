"""The frozen teacher: a pre-trained encoder used only for targets."""
import hashlib
import os
import os.path as osp
import warnings
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log

from mmaction.registry import MODELS
from amd_mmaction.weights.formats import (check_stored_pos_embed, load_encoder_weights,
                                          open_checkpoint, to_encoder_state)
from amd_mmaction.weights.hf_config import check_hf_config
from amd_mmaction.weights.mmaction import finetuned_layers

_DTYPES = {None: None, 'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def state_fingerprint(state: Dict[str, torch.Tensor]) -> str:
    """``sha256:<hex>`` over the sorted tensor names, shapes, dtypes and
    bytes of ``state``: the same weights give the same fingerprint whatever
    file (or copy of it) they came from."""
    digest = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        digest.update(f'{name}|{tuple(t.shape)}|{t.dtype}\n'.encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return 'sha256:' + digest.hexdigest()


def file_size(path: str) -> Optional[int]:
    """Bytes of a checkpoint file, or of all files of a folder (Hugging
    Face); None when unreadable."""
    try:
        if osp.isdir(path):
            return sum(osp.getsize(osp.join(d, f)) for d, _, files in os.walk(path)
                       for f in files)
        return osp.getsize(path)
    except OSError:
        return None


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
        # what the teacher is, for the checkpoints of a run (a resume with another
        # teacher is refused: amd_mmaction/engine/hooks/teacher_identity.py)
        self.identity = dict(path=None, size=None, fingerprint=None, kind='random')
        if checkpoint is None:
            warnings.warn('FrozenTeacher has no checkpoint: the teacher is random. '
                          'Only tests should do this.')
        else:
            ckpt = open_checkpoint(checkpoint)
            if ckpt.is_hf:  # HF config.json vs this encoder
                check_hf_config(ckpt.hf_config, self.encoder, checkpoint)
            check_stored_pos_embed(ckpt.state, self.encoder, checkpoint)
            state = to_encoder_state(ckpt.state, checkpoint)
            # The teacher has no final norm; ignore one in the checkpoint.
            state = {k: v for k, v in state.items() if not k.startswith('norm.')}
            load_encoder_weights(self.encoder, state, checkpoint)
            _, classifier = finetuned_layers(ckpt.state)
            self.identity = dict(path=osp.abspath(checkpoint), size=file_size(checkpoint),
                                 fingerprint=state_fingerprint(state),
                                 kind='classifier' if classifier else 'encoder')
            if classifier:
                print_log(
                    f'teacher checkpoint {checkpoint} is a fine-tuned classifier checkpoint '
                    f'(it holds {", ".join(sorted(classifier))}): its backbone is used as the '
                    'teacher and the classifier is ignored. AMD distils from a pre-trained '
                    '(masked-autoencoder) encoder; check model.teacher.checkpoint if that '
                    'is not what you meant', logger='current', level=30)
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
