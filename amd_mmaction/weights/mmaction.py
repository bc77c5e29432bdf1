"""Turn a pre-training checkpoint (this project's AMD / VideoMAE students,
or the official VideoMAE / AMD releases) into weights for mmaction2's
``VisionTransformer`` inside a ``Recognizer3D``.

Two ways in, one conversion:

* :func:`export_checkpoint` writes a ``load_from``-ready file whose keys are
  exactly mmaction2's (``backbone.*``), with the position table rebuilt for
  the target clip length and size; decoder, aligner/generator and teacher
  weights never reach it.
* ``init_cfg=dict(type='AMDPretrained', checkpoint=...)`` on the backbone
  converts on the fly while the Runner initialises the model, so a
  fine-tuning config can start from a pre-training checkpoint directly.
"""
import os
import os.path as osp
import re
from typing import Dict, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS

from mmaction.registry import MODELS

from amd_mmaction.weights.formats import read_checkpoint, to_encoder_state
from amd_mmaction.weights.head_count import choose_heads, recorded_heads

# VideoViT (official VideoMAE) names -> mmaction2 VisionTransformer names.
TO_MMACTION = (
    (re.compile(r'^patch_embed\.proj\.'), 'patch_embed.projection.'),
    (re.compile(r'\.mlp\.fc1\.'), '.mlp.layers.0.0.'),
    (re.compile(r'\.mlp\.fc2\.'), '.mlp.layers.1.'),
)
# Fixed buffers and fresh layers the pre-training checkpoint cannot hold.
REBUILT = ('pos_embed',)
FRESH = re.compile(r'^fc_norm\.')


class CheckpointMismatch(ValueError):
    """The checkpoint does not fit the target backbone."""


def _rename(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        qkv_bias = re.match(r'^(blocks\.\d+\.attn\.)qkv\.bias$', k)
        if qkv_bias:
            # MAE's biased qkv: mmaction2 keeps q and v biases only. The k
            # bias adds q.b_k to every logit of a query, which softmax
            # ignores, so dropping it changes nothing.
            q, _, v_ = v.chunk(3)
            out[qkv_bias.group(1) + 'q_bias'] = q
            out[qkv_bias.group(1) + 'v_bias'] = v_
            continue
        for pattern, repl in TO_MMACTION:
            k = pattern.sub(repl, k)
        out[k] = v
    return out


def _depth(keys) -> int:
    return 1 + max((int(k.split('.')[1]) for k in keys if k.startswith('blocks.')),
                   default=-1)


def convert_state(encoder: Dict[str, torch.Tensor], target: Dict[str, torch.Tensor],
                  source: str = '<state dict>', fc_norm_from_norm: bool = False,
                  strict: bool = True) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Map encoder weights (VideoViT names, see ``to_encoder_state``) onto the
    state dict ``target`` of an mmaction2 ``VisionTransformer``.

    ``pos_embed`` and ``fc_norm`` come from ``target`` (the fixed table for
    the target grid; a fresh LayerNorm, as VideoMAE fine-tuning starts), the
    rest from the checkpoint. The pre-training final ``norm`` feeds the
    decoder and is dropped unless ``fc_norm_from_norm`` (or the target has no
    mean pooling and keeps ``norm``). Returns (state, report) where report
    lists ``carried``, ``rebuilt``, ``fresh``, ``dropped`` and ``unexpected``
    keys; raises :class:`CheckpointMismatch` on missing weights, wrong
    depth or shapes, and (``strict``) unexpected keys.
    """
    state = _rename(encoder)
    has_fc_norm = any(FRESH.match(k) for k in target)
    dropped = []
    if has_fc_norm:
        for suffix in ('weight', 'bias'):
            if f'norm.{suffix}' in state:
                value = state.pop(f'norm.{suffix}')
                if fc_norm_from_norm:
                    state[f'fc_norm.{suffix}'] = value
                else:
                    dropped.append(f'norm.{suffix}')
    d_ckpt, d_model = _depth(state), _depth(target)
    if d_ckpt != d_model:
        raise CheckpointMismatch(
            f'{source}: checkpoint encoder has {d_ckpt} blocks but the target '
            f'VisionTransformer has {d_model}; set depth={d_ckpt}')
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs target '
                  f'{tuple(target[k].shape)}'
                  for k in sorted(set(state) & set(target))
                  if k not in REBUILT and state[k].shape != target[k].shape]
    if mismatched:
        w_ckpt = state.get('patch_embed.projection.weight')
        w_model = target.get('patch_embed.projection.weight')
        hint = ('wrong embed_dims / patch_size / tubelet_size / mlp_ratio?'
                if w_ckpt is None or w_model is None else
                f'checkpoint embed_dims={w_ckpt.shape[0]}, patch and tubelet '
                f'{tuple(w_ckpt.shape[2:])}; target {w_model.shape[0]}, '
                f'{tuple(w_model.shape[2:])}')
        raise CheckpointMismatch(
            f'{source}: shapes do not fit the target VisionTransformer ({hint}): '
            + '; '.join(mismatched[:6]))
    fresh = sorted(k for k in target if FRESH.match(k) and k not in state)
    rebuilt = [k for k in REBUILT if k in target]
    missing = sorted(set(target) - set(state) - set(fresh) - set(rebuilt))
    if missing:
        raise CheckpointMismatch(
            f'{source}: {len(missing)} target weights are not in the checkpoint '
            f'(qkv_bias / init_values / depth differ?): {missing[:8]}')
    unexpected = sorted(set(state) - set(target))
    if unexpected and strict:
        raise CheckpointMismatch(
            f'{source}: {len(unexpected)} checkpoint weights have no place in '
            f'the target VisionTransformer: {unexpected[:8]} (strict=False '
            'drops them)')
    out = {k: (target[k].clone() if k in rebuilt or k in fresh else state[k])
           for k in target}
    report = dict(carried=sorted(set(target) - set(fresh) - set(rebuilt)),
                  rebuilt=rebuilt, fresh=fresh, dropped=dropped,
                  unexpected=unexpected)
    return out, report


def infer_backbone(encoder: Dict[str, torch.Tensor], source: str = '<state dict>') -> dict:
    """VisionTransformer arguments the weights fix (width, depth, patch,
    tubelet, MLP ratio, q/v bias)."""
    w = encoder.get('patch_embed.proj.weight')
    if w is None or w.ndim != 5:
        shape = None if w is None else tuple(w.shape)
        raise CheckpointMismatch(
            f'{source}: expected a video patch embedding patch_embed.proj.weight '
            f'of shape (C, 3, tubelet, patch, patch), found {shape}')
    dims = w.shape[0]
    fc1 = encoder.get('blocks.0.mlp.fc1.weight')
    return dict(embed_dims=dims, depth=_depth(encoder), patch_size=w.shape[-1],
                tubelet_size=w.shape[2], in_channels=w.shape[1],
                mlp_ratio=(fc1.shape[0] / dims) if fc1 is not None else 4.0,
                qkv_bias=('blocks.0.attn.q_bias' in encoder
                          or 'blocks.0.attn.qkv.bias' in encoder))


def build_target(encoder: Dict[str, torch.Tensor], num_frames: int, img_size: int,
                 source: str = '<state dict>', **overrides) -> torch.nn.Module:
    """A fresh mmaction2 VisionTransformer for the target clip, sized by the
    checkpoint; ``overrides`` (e.g. num_heads, use_mean_pooling) must agree
    with what the weights fix."""
    cfg = infer_backbone(encoder, source)
    for key in ('embed_dims', 'depth', 'patch_size', 'tubelet_size'):
        if key in overrides and overrides[key] != cfg[key]:
            raise CheckpointMismatch(
                f'{source}: checkpoint has {key}={cfg[key]} but {overrides[key]} '
                'was asked for')
    cfg.update(overrides)
    # Heads do not change any weight shape: any divisor builds the same keys.
    cfg.setdefault('num_heads', max(h for h in (1, 2, 3, 4, 6, 8, 12, 16)
                                    if cfg['embed_dims'] % h == 0))
    cfg.update(type='VisionTransformer', num_frames=num_frames, img_size=img_size)
    return MODELS.build(cfg)


def load_encoder(path: str) -> Dict[str, torch.Tensor]:
    """Encoder weights (VideoViT names) from any supported checkpoint file;
    decoder, aligner/generator, teacher and head weights are left behind."""
    return to_encoder_state(read_checkpoint(path), source=path)


def export_checkpoint(src: str, dst: str, num_frames: int = 16, img_size: int = 224,
                      fc_norm_from_norm: bool = False, strict: bool = True,
                      **backbone) -> dict:
    """Write ``dst``: ``{'state_dict': {'backbone.*': ...}, 'meta': {...}}``
    for an mmaction2 Recognizer3D whose VisionTransformer sees
    ``num_frames`` x ``img_size`` clips. ``backbone`` takes further
    VisionTransformer arguments (num_heads, use_mean_pooling, ...).
    Returns the report of :func:`convert_state` plus the backbone config."""
    encoder = load_encoder(src)
    try:  # heads change no shape: check them against the file's own records
        backbone['num_heads'], heads_from = choose_heads(
            infer_backbone(encoder, src)['embed_dims'], backbone.get('num_heads'),
            *recorded_heads(src), source=src)
    except ValueError as err:
        raise CheckpointMismatch(str(err)) from err
    target = build_target(encoder, num_frames, img_size, source=src, **backbone)
    state, report = convert_state(encoder, target.state_dict(), source=src,
                                  fc_norm_from_norm=fc_norm_from_norm, strict=strict)
    cfg = dict(infer_backbone(encoder, src), num_frames=num_frames,
               img_size=img_size, **backbone)
    meta = dict(source=osp.abspath(src), backbone=cfg, report=report,
                converted_by='amd_mmaction.weights.mmaction')
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in state.items()},
                    meta=meta), dst)
    return dict(report, backbone=cfg, path=dst, num_heads_from=heads_from)


@WEIGHT_INITIALIZERS.register_module(name='AMDPretrained')
class AMDPretrainedInit:
    """``init_cfg`` for mmaction2's VisionTransformer that loads a
    pre-training checkpoint (any supported format) with the conversion of
    :func:`convert_state`, against the module's own keys, shapes and
    position table. With ``checkpoint=None`` it applies mmaction2's default
    ViT init (truncated-normal Linear, unit LayerNorm): training from scratch.

    Example: ``backbone=dict(type='VisionTransformer', ...,
    init_cfg=dict(type='AMDPretrained', checkpoint='epoch_800.pth'))``.
    """

    def __init__(self, checkpoint: Optional[str] = None,
                 fc_norm_from_norm: bool = False, strict: bool = True):
        self.checkpoint = checkpoint
        self.fc_norm_from_norm = fc_norm_from_norm
        self.strict = strict
        self.wholemodule = False

    def __call__(self, module: torch.nn.Module) -> None:
        if type(module).__name__ != 'VisionTransformer':
            raise TypeError('AMDPretrained initialises an mmaction2 '
                            f'VisionTransformer, not {type(module).__name__}; put '
                            'it in model.backbone.init_cfg')
        if self.checkpoint is None:
            from mmengine.model.weight_init import initialize
            initialize(module, [
                dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
                dict(type='Constant', layer='LayerNorm', val=1., bias=0.)])
            info = 'AMDPretrained: no checkpoint, default ViT init'
        else:
            encoder = load_encoder(self.checkpoint)
            state, report = convert_state(
                encoder, module.state_dict(), source=self.checkpoint,
                fc_norm_from_norm=self.fc_norm_from_norm, strict=self.strict)
            module.load_state_dict(state, strict=True)
            info = (f'AMDPretrained: {len(report["carried"])} tensors from '
                    f'{self.checkpoint}; rebuilt {report["rebuilt"]}, fresh '
                    f'{report["fresh"]}, dropped {report["dropped"] + report["unexpected"]}')
            print_log(info, logger='current')
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=info)
