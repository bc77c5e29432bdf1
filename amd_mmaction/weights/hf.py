"""Hugging Face transformers VideoMAE weights (``save_pretrained`` folders,
bare ``.safetensors`` files) as VideoViT state dicts; their ``config.json``
is read and checked by :mod:`.hf_config`.

transformers is never imported: the names below are its VideoMAE layout
(``videomae.encoder.layer.N.attention.attention.query.weight``). Hub
checkpoints (transformers 4) store the attention biases as ``q_bias`` /
``v_bias``; transformers 5 saves them as ``query.bias`` / ``value.bias``;
both are read. There is never a key bias (VideoMAE's q/v bias).
"""
import json
import os.path as osp
from typing import Dict, Optional, Tuple

import torch

from amd_mmaction.weights.hf_config import check_config_against_tensors, read_hf_config

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


def read_hf_checkpoint(path: str) -> Tuple[Dict[str, torch.Tensor], Optional[dict]]:
    """(VideoViT-named state, config.json or None) of an HF VideoMAE folder
    or .safetensors file; the config (when there is one) must agree with
    the tensors."""
    state = hf_to_videovit(_load_tensors(_weight_files(path)), path)
    cfg = read_hf_config(path)
    if cfg is not None:
        check_config_against_tensors(cfg, state, path)
    return state, cfg
