"""Hugging Face VideoMAE ``config.json``, in one place: where it lies beside
a checkpoint, reading and writing it, what VideoViT-named tensors fix of it,
and checking it against those tensors and against the encoder built to hold
them. Import (:mod:`.hf`), export (:mod:`.hf_export`), the recorded head
count (:mod:`.head_count`) and the teacher's check all use it.

transformers is never imported; the field names and defaults are its
``VideoMAEConfig``'s.
"""
import json
import math
import os.path as osp
import warnings
from typing import Dict, Optional, Tuple

import torch

CONFIG_NAME = 'config.json'
# VideoMAEConfig's defaults, for the fields a config.json leaves out.
DEFAULTS = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                intermediate_size=3072, patch_size=16, tubelet_size=2, image_size=224,
                num_frames=16, num_channels=3, layer_norm_eps=1e-12)


def config_path(path: str) -> str:
    """The ``config.json`` of a folder, or the one beside a file."""
    return osp.join(path if osp.isdir(path) else osp.dirname(path), CONFIG_NAME)


def read_hf_config(path: str) -> Optional[dict]:
    """``config.json`` of a folder (or beside a file), None if there is none.
    Raises naming the file when it is not JSON or not a VideoMAE config."""
    cfg_path = config_path(path)
    if not osp.isfile(cfg_path):
        return None
    with open(cfg_path) as f:
        try:
            cfg = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'{cfg_path}: not valid JSON ({err})') from err
    if cfg.get('model_type', 'videomae') != 'videomae':
        raise ValueError(f"{cfg_path}: model_type is {cfg['model_type']!r}, expected "
                         "'videomae' (only VideoMAE weights map onto VideoViT)")
    return cfg


def write_hf_config(out_dir: str, cfg: dict) -> str:
    """Write ``out_dir/config.json``; returns its path."""
    path = osp.join(out_dir, CONFIG_NAME)
    with open(path, 'w') as f:
        json.dump(cfg, f, indent=2)
    return path


def heads_in_config(cfg: Optional[dict], path: str) -> Tuple[Optional[int], str]:
    """(num_attention_heads, where it was read) of a checkpoint's config.json,
    or (None, '') when it records none."""
    heads = (cfg or {}).get('num_attention_heads')
    if isinstance(heads, int):
        return heads, f'{config_path(path)} num_attention_heads'
    return None, ''


def _square(cfg: dict, key: str, source: str):
    v = cfg.get(key)
    if isinstance(v, (list, tuple)):
        if len(set(v)) != 1:
            raise ValueError(f'{source}: {key}={v} is not square; VideoViT needs square '
                             'images and patches')
        v = v[0]
    return v


def _qkv_bias(cfg: dict) -> bool:
    # transformers 4 writes qkv_bias, 5 qv_bias; both mean q/v bias only.
    return bool(cfg.get('qv_bias', cfg.get('qkv_bias', True)))


def infer_config(state: Dict[str, torch.Tensor]) -> dict:
    """What the VideoViT-named tensors fix of an HF config."""
    w = state['patch_embed.proj.weight']
    return dict(hidden_size=w.shape[0], num_channels=w.shape[1], tubelet_size=w.shape[2],
                patch_size=w.shape[3],
                num_hidden_layers=1 + max(int(k.split('.')[1]) for k in state
                                          if k.startswith('blocks.')),
                intermediate_size=state['blocks.0.mlp.fc1.weight'].shape[0],
                qkv_bias='blocks.0.attn.q_bias' in state,
                use_mean_pooling='norm.weight' not in state)


def build_hf_config(state: Dict[str, torch.Tensor], num_attention_heads: int,
                    layer_norm_eps: float, image_size: int, num_frames: int) -> dict:
    """The config.json of a VideoMAE encoder with VideoViT-named ``state``
    (q/v biases, not a fused qkv bias) and the fields the weights do not fix."""
    have = infer_config(state)
    return dict(
        model_type='videomae', hidden_size=have['hidden_size'],
        num_hidden_layers=have['num_hidden_layers'],
        num_attention_heads=num_attention_heads,
        intermediate_size=have['intermediate_size'], hidden_act='gelu',
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        layer_norm_eps=layer_norm_eps, image_size=image_size,
        patch_size=have['patch_size'], num_channels=have['num_channels'],
        num_frames=num_frames, tubelet_size=have['tubelet_size'],
        qkv_bias=have['qkv_bias'])


def check_config_against_tensors(cfg: dict, state: Dict[str, torch.Tensor],
                                 source: str) -> None:
    """Raise naming every field of ``cfg`` (the config.json of ``source``)
    that its VideoViT-named tensors contradict."""
    have = infer_config(state)
    want = dict(hidden_size=cfg.get('hidden_size', DEFAULTS['hidden_size']),
                num_hidden_layers=cfg.get('num_hidden_layers', DEFAULTS['num_hidden_layers']),
                intermediate_size=cfg.get('intermediate_size', DEFAULTS['intermediate_size']),
                patch_size=_square(cfg, 'patch_size', source) or DEFAULTS['patch_size'],
                tubelet_size=cfg.get('tubelet_size', DEFAULTS['tubelet_size']),
                num_channels=cfg.get('num_channels', DEFAULTS['num_channels']),
                qkv_bias=_qkv_bias(cfg),
                use_mean_pooling=bool(cfg.get('use_mean_pooling', True)))
    evidence = dict(hidden_size='patch projection out channels',
                    num_hidden_layers='encoder.layer.N count',
                    intermediate_size='intermediate.dense.weight rows',
                    patch_size='patch projection kernel', tubelet_size='patch projection kernel',
                    num_channels='patch projection in channels',
                    qkv_bias='q_bias/v_bias present', use_mean_pooling='layernorm.weight absent')
    bad = [f'{k}={want[k]} but the tensors have {have[k]} ({evidence[k]}, '
           f'embeddings.patch_embeddings.projection.weight '
           f'{tuple(state["patch_embed.proj.weight"].shape)})'
           for k in want if want[k] != have[k]]
    if bad:
        raise ValueError(f'{config_path(source)} does not describe its weights: '
                         + '; '.join(bad))


def check_hf_config(cfg: Optional[dict], encoder, path: str) -> None:
    """Compare the config.json ``cfg`` of the HF checkpoint ``path`` with the
    VideoViT ``encoder`` built to hold it (fields the weight shapes do not
    show: heads, clip grid, norm eps). ``cfg`` None (a bare .safetensors
    file) warns that these cannot be checked."""
    source = config_path(path)
    if cfg is None:
        warnings.warn(f'{path}: no config.json beside it; num_attention_heads, image_size, '
                      'num_frames and layer_norm_eps cannot be checked, the encoder '
                      "config's are used")
        return
    blk = encoder.blocks[0]
    own: Dict[str, Tuple[object, str]] = dict(
        hidden_size=(encoder.embed_dims, 'embed_dims'),
        num_hidden_layers=(encoder.depth, 'depth'),
        num_attention_heads=(encoder.num_heads, 'num_heads'),
        intermediate_size=(blk.mlp.fc1.out_features, 'mlp_ratio'),
        patch_size=(encoder.patch_size, 'patch_size'),
        tubelet_size=(encoder.tubelet_size, 'tubelet_size'),
        image_size=(encoder.grid[1] * encoder.patch_size, 'img_size'),
        num_frames=(encoder.grid[0] * encoder.tubelet_size, 'num_frames'),
        num_channels=(encoder.patch_embed.proj.in_channels, 'in_channels'),
        qkv_bias=(blk.attn.q_bias is not None, "qkv_bias ('qv' or None)"),
        layer_norm_eps=(blk.norm1.eps, 'norm_eps'))
    bad = []
    for key, (mine, arg) in own.items():
        if key == 'qkv_bias':
            theirs = _qkv_bias(cfg)
        elif key in ('image_size', 'patch_size'):
            theirs = _square(cfg, key, source) or DEFAULTS[key]
        else:
            theirs = cfg.get(key, DEFAULTS[key])
        same = (math.isclose(theirs, mine, rel_tol=1e-6) if key == 'layer_norm_eps'
                else theirs == mine)
        if not same:
            bad.append(f'{key}={theirs} vs encoder {arg}={mine}')
    if cfg.get('hidden_act', 'gelu') != 'gelu':
        bad.append(f"hidden_act={cfg['hidden_act']!r} vs encoder GELU (exact, 'gelu')")
    if bad:
        raise ValueError(f'{source} does not fit the encoder built for it: ' + '; '.join(bad)
                         + ' (set these encoder config keys to the checkpoint values; '
                         'HF configs default layer_norm_eps to 1e-12)')
