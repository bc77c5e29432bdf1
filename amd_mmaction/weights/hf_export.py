"""Write this project's students as Hugging Face transformers VideoMAE
folders (``config.json`` + ``model.safetensors``, no pickle) that
``VideoMAEModel`` / ``VideoMAEForVideoClassification.from_pretrained`` load
with no missing keys. transformers is not imported.

Two sources:

* a pre-training checkpoint (AMD / VideoMAE of this project, official
  VideoMAE / AMD): the encoder with its final norm -> ``VideoMAEModel``
  (``use_mean_pooling=False``: HF's ``layernorm`` is our final norm, so
  ``last_hidden_state`` equals our student's output);
* a fine-tuned mmaction2 ``Recognizer3D`` + ``VisionTransformer`` +
  ``TimeSformerHead`` checkpoint -> ``VideoMAEForVideoClassification``
  (``fc_norm`` + ``classifier``).

Fields the weights do not fix (heads, clip grid, norm eps) come from the
arguments, else from the config mmengine saved in the checkpoint's
``meta`` (read as literals, never executed); heads are never guessed (they
change the forward, not a shape). The config.json itself is
:mod:`.hf_config`'s, the same code that checks it on import.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch

from amd_mmaction.student.vit import sinusoid_table
from amd_mmaction.weights.formats import open_checkpoint, to_encoder_state
from amd_mmaction.weights.hf import BLOCK, HEAD, QKV, TOP
from amd_mmaction.weights.hf_config import build_hf_config, write_hf_config


def _hf_state(encoder: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    """VideoViT names -> HF VideoMAE names (hub layout: q_bias / v_bias)."""
    top = {v: k for k, v in TOP.items()}
    block = {v: k for k, v in BLOCK.items()}
    out = {}
    for k, v in encoder.items():
        if k in top:
            out[prefix + top[k]] = v
            continue
        _, i, rest = k.split('.', 2)
        name = f'{prefix}encoder.layer.{i}.'
        if rest == 'attn.qkv.weight':
            for part, w in zip(QKV, v.chunk(3)):
                out[name + part] = w
        else:
            out[name + block[rest]] = v
    return out


def _encoder_of(raw: Dict[str, torch.Tensor], src: str) -> Dict[str, torch.Tensor]:
    enc = to_encoder_state(raw, src)
    if 'cls_token' in enc or enc['patch_embed.proj.weight'].ndim != 5:
        raise ValueError(f'{src}: an image (MAE) encoder with a class token or 2-D patches; '
                         'HF VideoMAE holds video encoders only')
    for k in [k for k in enc if k.endswith('attn.qkv.bias')]:
        # A biased qkv (MAE): q and v biases carry over; the k bias adds a
        # constant to all logits of a query, which softmax ignores.
        q, _, v = enc.pop(k).chunk(3)
        enc[k.replace('qkv.bias', 'q_bias')], enc[k.replace('qkv.bias', 'v_bias')] = q, v
    known = set(TOP.values()) | {'attn.qkv.weight'} | set(BLOCK.values())
    extra = [k for k in enc if k not in known and k.split('.', 2)[-1] not in known]
    if extra:
        raise ValueError(f'{src}: encoder weights with no place in HF VideoMAE: {extra[:8]}')
    return enc


def _pick(name: str, given, saved, default=None, src: str = ''):
    value = given if given is not None else saved if saved is not None else default
    if value is None:
        raise ValueError(f'{src}: {name} is not stored in the weights nor in a saved config; '
                         f'pass --{name.replace("_", "-")}')
    return value


def _read_labels(labels, num_classes: int, src: str) -> List[str]:
    if labels is None:
        return [f'LABEL_{i}' for i in range(num_classes)]
    if isinstance(labels, str):
        with open(labels) as f:
            labels = [line.strip() for line in f if line.strip()]
    if len(labels) != num_classes:
        raise ValueError(f'{src}: the classifier has {num_classes} classes but '
                         f'{len(labels)} labels were given')
    return list(labels)


def export_hf(src: str, out_dir: str, num_frames: Optional[int] = None,
              img_size: Optional[int] = None, num_heads: Optional[int] = None,
              norm_eps: Optional[float] = None,
              labels: Optional[Sequence[str]] = None) -> dict:
    """Write ``out_dir/config.json`` and ``out_dir/model.safetensors``.
    ``labels``: class names (a list or a file with one per line) for a
    fine-tuned source. Returns the config written, ``kind`` and the paths."""
    from safetensors.torch import save_file
    ckpt = open_checkpoint(src)  # one read: tensors and the saved config
    raw = ckpt.state
    saved = ckpt.model_cfg() or {}
    finetuned = any(k.startswith('cls_head.') for k in raw)
    arch = (saved.get('backbone') if finetuned else saved.get('student')) or {}
    enc = _encoder_of(raw, src)
    dims = enc['patch_embed.proj.weight'].shape[0]
    eps = (arch.get('norm_cfg') or {}).get('eps') if finetuned else arch.get('norm_eps')
    cfg = build_hf_config(
        enc, num_attention_heads=int(_pick('num_heads', num_heads, arch.get('num_heads'),
                                           src=src)),
        layer_norm_eps=float(_pick('norm_eps', norm_eps, eps, 1e-6, src)),
        image_size=int(_pick('img_size', img_size, arch.get('img_size'), 224, src)),
        num_frames=int(_pick('num_frames', num_frames, arch.get('num_frames'), 16, src)))
    if dims % cfg['num_attention_heads']:
        raise ValueError(f'{src}: hidden size {dims} is not divisible by '
                         f'num_heads={cfg["num_attention_heads"]}')
    if finetuned:
        state = _classifier(raw, enc, cfg, src, labels)
    else:
        cfg.update(architectures=['VideoMAEModel'], use_mean_pooling='norm.weight' not in enc)
        state = _hf_state(enc, '')
    os.makedirs(out_dir, exist_ok=True)
    state = {k: v.detach().to('cpu').contiguous().clone() for k, v in state.items()}
    save_file(state, osp.join(out_dir, 'model.safetensors'), metadata={'format': 'pt'})
    write_hf_config(out_dir, cfg)
    return dict(config=cfg, kind='classifier' if finetuned else 'encoder',
                tensors=len(state), dir=out_dir)


def _classifier(raw, enc, cfg, src, labels) -> Dict[str, torch.Tensor]:
    """A Recognizer3D's backbone + TimeSformerHead as
    VideoMAEForVideoClassification (``cfg`` is completed in place)."""
    head = {k: v for k, v in raw.items() if k.startswith('cls_head.')}
    if set(head) != {'cls_head.fc_cls.weight', 'cls_head.fc_cls.bias'}:
        raise ValueError(f'{src}: expected a linear head (cls_head.fc_cls.weight/bias, '
                         f'TimeSformerHead), found {sorted(head)}')
    pos = raw.get('backbone.pos_embed')
    grid = ((cfg['num_frames'] // cfg['tubelet_size'])
            * (cfg['image_size'] // cfg['patch_size']) ** 2)
    if pos is not None:
        table = sinusoid_table(grid, cfg['hidden_size'])
        if pos.shape != table.shape or float((pos.float() - table).abs().max()) > 1e-4:
            raise ValueError(
                f'{src}: backbone.pos_embed {tuple(pos.shape)} is not the fixed sin-cos '
                f'table of {cfg["num_frames"]} frames x {cfg["image_size"]} px '
                f'{tuple(table.shape)}: wrong --num-frames/--img-size, or learned '
                'positions (HF VideoMAE recomputes a fixed table)')
    mean_pool = 'backbone.fc_norm.weight' in raw
    if not mean_pool and 'norm.weight' not in enc:
        raise ValueError(f'{src}: neither backbone.fc_norm nor backbone.norm: no final norm')
    names = _read_labels(labels, head['cls_head.fc_cls.weight'].shape[0], src)
    cfg.update(architectures=['VideoMAEForVideoClassification'], use_mean_pooling=mean_pool,
               id2label={str(i): n for i, n in enumerate(names)},
               label2id={n: i for i, n in enumerate(names)})
    state = _hf_state(enc, 'videomae.')
    if mean_pool:
        state.update({f'fc_norm.{s}': raw[f'backbone.fc_norm.{s}'] for s in ('weight', 'bias')})
    back = {v: k for k, v in HEAD.items()}
    state.update({back[f'head.{s}']: head[f'cls_head.fc_cls.{s}'] for s in ('weight', 'bias')})
    return state
