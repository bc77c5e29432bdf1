"""Export an image student (VideoViT, one frame, tubelet 1, MAE's 2-D
table) as an mmaction2 ``Recognizer3D`` + ``VisionTransformer(num_frames=1,
tubelet_size=1)`` checkpoint for fine-tuning and linear probing.

The renaming is :func:`amd_mmaction.transfer.convert_state` (MAE's qkv bias
becomes q/v biases exactly; the pre-training ``norm`` is dropped and
``fc_norm`` starts fresh, as in MAE/VideoMAE fine-tuning). What differs for
images is the position table: ``convert_state`` rebuilds mmaction2's 1-D
table, while an image student was trained with MAE's 2-D one. mmaction2
keeps ``pos_embed`` as a persistent buffer, so the 2-D table is written
into the checkpoint and loads with it.
"""
import os
import os.path as osp
from typing import Dict

import torch

from mmaction.registry import MODELS
from amd_mmaction.weights.formats import read_checkpoint, to_encoder_state
from amd_mmaction.weights.mmaction import convert_state


def vit_backbone_cfg(student_cfg: dict, **overrides) -> dict:
    """mmaction2 VisionTransformer config matching an image student."""
    s = dict(student_cfg)
    if s.get('with_cls_token'):
        raise ValueError("the student has a class token, which mmaction2's "
                         'VisionTransformer cannot hold; pre-train image '
                         'students with with_cls_token=False')
    cfg = dict(type='VisionTransformer', img_size=s.get('img_size', 224),
               patch_size=s.get('patch_size', 16), num_frames=s.get('num_frames', 1),
               tubelet_size=s.get('tubelet_size', 1),
               embed_dims=s.get('embed_dims', 768), depth=s.get('depth', 12),
               num_heads=s.get('num_heads', 12), mlp_ratio=s.get('mlp_ratio', 4.0),
               qkv_bias=s.get('qkv_bias', 'qv') is not None,
               norm_cfg=dict(type='LN', eps=s.get('norm_eps', 1e-6)))
    cfg.update(overrides)
    return cfg


def to_mmaction_vit(encoder: Dict[str, torch.Tensor], student_cfg: dict,
                    source: str = '<state dict>') -> Dict[str, torch.Tensor]:
    """Student encoder weights (VideoViT names) -> ``backbone.*`` weights of
    the matching mmaction2 VisionTransformer, with the student's own table."""
    target = MODELS.build(vit_backbone_cfg(student_cfg))
    state, _ = convert_state(encoder, target.state_dict(), source=source)
    table = MODELS.build(dict(student_cfg, type='VideoViT')).pos_embed
    state['pos_embed'] = table.clone()
    return {'backbone.' + k: v for k, v in state.items()}


def export_image_student(ckpt_path: str, student_cfg: dict, out_path: str) -> str:
    """Write ``out_path`` = ``{'state_dict': backbone.*}`` from an AMD image
    pre-training checkpoint (the student; decoder, aligner and teacher stay
    behind). Load it with ``load_from`` in a fine-tuning config."""
    encoder = to_encoder_state(read_checkpoint(ckpt_path), ckpt_path)
    state = to_mmaction_vit(encoder, student_cfg, ckpt_path)
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    torch.save({'state_dict': state,
                'meta': {'source': osp.abspath(ckpt_path),
                         'backbone': vit_backbone_cfg(student_cfg),
                         'converted_by': 'amd_mmaction.transfer.image.export'}}, out_path)
    return out_path

