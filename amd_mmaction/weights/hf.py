"""Hugging Face transformers VideoMAE weights (``save_pretrained`` folders,
bare ``.safetensors`` files) as VideoViT state dicts, and their
``config.json`` checked against the encoder that will hold them.

transformers is never imported: the names below are its VideoMAE layout
(``videomae.encoder.layer.N.attention.attention.query.weight``). Hub
checkpoints (transformers 4) store the attention biases as ``q_bias`` /
``v_bias``; transformers 5 saves them as ``query.bias`` / ``value.bias``;
both are read. There is never a key bias (VideoMAE's q/v bias).
"""
import json
import math
import os.path as osp
import warnings
from typing import Dict, Optional, Tuple

import torch

# Per-layer HF suffix -> VideoViT block suffix.
BLOCK = {
    'layernorm_before.weight': 'norm1.weight', 'layernorm_before.bias': 'norm1.bias',
    'layernorm_after.weight': 'norm2.weight', 'layernorm_after.bias': 'norm2.bias',
    'attention.output.dense.weight': 'attn.proj.weight',
    'attention.output.dense.bias': 'attn.proj.bias',
    'intermediate.dense.weight': 'mlp.fc1.weight', 'intermediate.dense.bias': 'mlp.fc1.bias',
    'output.dense.weight': 'mlp.fc2.weight', 'output.dense.bias': 'mlp.fc2.bias',
    'attention.attention.q_bias': 'attn.q_bias', 'attention.attention.v_bias': 'attn.v_bias',
}
# transformers 5 names of the same biases (read only; we write the hub's).
BLOCK_V5 = {'attention.attention.query.bias': 'attn.q_bias',
            'attention.attention.value.bias': 'attn.v_bias'}
QKV = tuple(f'attention.attention.{n}.weight' for n in ('query', 'key', 'value'))
TOP = {
    'embeddings.patch_embeddings.projection.weight': 'patch_embed.proj.weight',
    'embeddings.patch_embeddings.projection.bias': 'patch_embed.proj.bias',
    'layernorm.weight': 'norm.weight', 'layernorm.bias': 'norm.bias',
}
# Classification head (VideoMAEForVideoClassification, no videomae. prefix).
HEAD = {'fc_norm.weight': 'fc_norm.weight', 'fc_norm.bias': 'fc_norm.bias',
        'classifier.weight': 'head.weight', 'classifier.bias': 'head.bias'}
# VideoMAEForPreTraining's decoder side: not part of the encoder.
IGNORED = ('decoder.', 'encoder_to_decoder.', 'mask_token')


def is_hf_path(path) -> bool:
    return isinstance(path, str) and (osp.isdir(path) or path.endswith('.safetensors'))


def _config_path(path: str) -> str:
    return osp.join(path if osp.isdir(path) else osp.dirname(path), 'config.json')


def _weight_files(path: str):
    """The tensor files of a folder or a file path, with their loader."""
    if not osp.isdir(path):
        if not osp.isfile(path):
            raise FileNotFoundError(f'checkpoint file {path!r} does not exist')
        return [path]
    index = osp.join(path, 'model.safetensors.index.json')
    if osp.isfile(osp.join(path, 'model.safetensors')):
        return [osp.join(path, 'model.safetensors')]
    if osp.isfile(index):  # sharded save_pretrained
        with open(index) as f:
            shards = sorted(set(json.load(f)['weight_map'].values()))
        return [osp.join(path, s) for s in shards]
    if osp.isfile(osp.join(path, 'pytorch_model.bin')):
        return [osp.join(path, 'pytorch_model.bin')]
    raise FileNotFoundError(
        f'{path!r} is a folder without model.safetensors, model.safetensors.index.json '
        'or pytorch_model.bin: not a transformers save_pretrained folder')


def _load_tensors(files) -> Dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    state = {}
    for f in files:
        try:
            if f.endswith('.bin'):  # plain tensors only: no code runs on load
                part = torch.load(f, map_location='cpu', weights_only=True)
            else:
                part = load_file(f, device='cpu')
        except Exception as err:
            raise ValueError(f'{f!r} is not a readable safetensors/torch file: {err}') from err
        state.update(part)
    return state


def load_hf_config(path: str) -> Optional[dict]:
    """``config.json`` of a folder (or beside a file), None if there is none."""
    cfg_path = _config_path(path)
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


def _square(cfg: dict, key: str, source: str):
    v = cfg.get(key)
    if isinstance(v, (list, tuple)):
        if len(set(v)) != 1:
            raise ValueError(f'{source}: {key}={v} is not square; VideoViT needs square '
                             'images and patches')
        v = v[0]
    return v


def hf_to_videovit(state: Dict[str, torch.Tensor], source: str = '<state dict>'
                   ) -> Dict[str, torch.Tensor]:
    """Rename HF VideoMAE tensors to VideoViT names (``blocks.N.attn.qkv``
    fused from query/key/value; classifier -> ``head``). Unknown keys and
    incomplete layers raise, naming them."""
    state = {k[len('videomae.'):] if k.startswith('videomae.') else k: v
             for k, v in state.items()}
    if not any(k.startswith('encoder.layer.') for k in state):
        raise ValueError(f'{source}: no VideoMAE encoder layers found (keys like '
                         'videomae.encoder.layer.0.attention.attention.query.weight); '
                         f'first keys: {sorted(state)[:8]}')
    out, qkv, unknown = {}, {}, []
    for k, v in state.items():
        if k in TOP or k in HEAD:
            out[TOP.get(k) or HEAD[k]] = v
        elif k.startswith('encoder.layer.'):
            i, suffix = k[len('encoder.layer.'):].split('.', 1)
            if suffix in QKV:
                qkv.setdefault(int(i), {})[suffix] = v
            elif suffix in BLOCK or suffix in BLOCK_V5:
                out[f'blocks.{i}.{BLOCK.get(suffix) or BLOCK_V5[suffix]}'] = v
            else:
                unknown.append(k)
        elif not k.startswith(IGNORED):
            unknown.append(k)
    if unknown:
        raise ValueError(f'{source}: {len(unknown)} keys are not VideoMAE weights '
                         f'(a key bias or another architecture?): {sorted(unknown)[:8]}')
    for i, parts in sorted(qkv.items()):
        missing = [f'encoder.layer.{i}.{n}' for n in QKV if n not in parts]
        if missing:
            raise ValueError(f'{source}: missing key(s) {missing}')
        out[f'blocks.{i}.attn.qkv.weight'] = torch.cat([parts[n] for n in QKV])
    _check_complete(out, source)
    return out


def _check_complete(out: Dict[str, torch.Tensor], source: str) -> None:
    """Every layer up to the deepest one must be whole (HF names in the error)."""
    depth = 1 + max(int(k.split('.')[1]) for k in out if k.startswith('blocks.'))
    with_bias = any(k.endswith(('attn.q_bias', 'attn.v_bias')) for k in out)
    back = dict({v: k for k, v in BLOCK.items()},
                **{'attn.qkv.weight': 'attention.attention.query/key/value.weight'})
    missing = [hf for hf, ours in TOP.items()
               if ours.startswith('patch_embed') and ours not in out]
    for i in range(depth):
        missing += [f'encoder.layer.{i}.{hf}' for ours, hf in back.items()
                    if f'blocks.{i}.{ours}' not in out
                    and (with_bias or ours not in ('attn.q_bias', 'attn.v_bias'))]
    if missing:
        raise ValueError(f'{source}: missing key(s) ({len(missing)}): {missing[:8]}')


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


def _qkv_bias(cfg: dict) -> bool:
    # transformers 4 writes qkv_bias, 5 qv_bias; both mean q/v bias only.
    return bool(cfg.get('qv_bias', cfg.get('qkv_bias', True)))


def check_config_against_tensors(cfg: dict, state: Dict[str, torch.Tensor],
                                 source: str) -> None:
    have = infer_config(state)
    want = dict(hidden_size=cfg.get('hidden_size', 768),
                num_hidden_layers=cfg.get('num_hidden_layers', 12),
                intermediate_size=cfg.get('intermediate_size', 3072),
                patch_size=_square(cfg, 'patch_size', source) or 16,
                tubelet_size=cfg.get('tubelet_size', 2),
                num_channels=cfg.get('num_channels', 3),
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
        raise ValueError(f'{_config_path(source)} does not describe its weights: '
                         + '; '.join(bad))


def read_hf_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """VideoViT-named state of an HF VideoMAE folder or .safetensors file;
    its config.json (when there is one) must agree with the tensors."""
    state = hf_to_videovit(_load_tensors(_weight_files(path)), path)
    cfg = load_hf_config(path)
    if cfg is not None:
        check_config_against_tensors(cfg, state, path)
    return state


def check_hf_config(path, encoder, source: Optional[str] = None) -> None:
    """Compare an HF checkpoint's config.json with the VideoViT ``encoder``
    built to hold it (fields the weight shapes do not show: heads, clip
    grid, norm eps). A no-op for other checkpoint formats."""
    if not is_hf_path(path):
        return
    cfg = load_hf_config(path)
    source = source or _config_path(path)
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
    defaults = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, patch_size=16, tubelet_size=2, image_size=224,
                    num_frames=16, num_channels=3, layer_norm_eps=1e-12)
    bad = []
    for key, (mine, arg) in own.items():
        if key == 'qkv_bias':
            theirs = _qkv_bias(cfg)
        elif key in ('image_size', 'patch_size'):
            theirs = _square(cfg, key, source) or defaults[key]
        else:
            theirs = cfg.get(key, defaults[key])
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
