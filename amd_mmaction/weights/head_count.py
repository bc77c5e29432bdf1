"""The attention head count of an exported backbone.

Heads change no weight shape, so a wrong ``--num-heads`` exports without a
single error and fine-tunes an attention the weights were never trained
for. The count is checked against what the checkpoint says about itself
(our checkpoints: ``meta.cfg``, mmengine's config text; the official
VideoMAE / AMD releases: ``args.model``, e.g.
``pretrain_videomae_small_patch16_224``) and against the width.
"""
import ast
import json
import os.path as osp
import re
from typing import Optional, Tuple

from amd_mmaction.weights.io import load_checkpoint_file

# a head of fewer dims cannot hold a useful query/key; ViTs use 32..128
HEAD_DIM_RANGE = (16, 256)
# the official model names' size word -> encoder heads (ViT-Ti/S/B/L/H/g)
SIZE_HEADS = {'tiny': 3, 'small': 6, 'base': 12, 'large': 16, 'huge': 16, 'giant': 16}


def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _kwargs(node) -> dict:
    """``dict(a=...)`` or ``{'a': ...}`` as {name: node}."""
    if isinstance(node, ast.Call):
        return {k.arg: k.value for k in node.keywords if k.arg}
    if isinstance(node, ast.Dict):
        return {_literal(k): v for k, v in zip(node.keys, node.values) if k is not None}
    return {}


def heads_from_cfg_text(text: str) -> Tuple[Optional[int], str]:
    """``model.{student,backbone,encoder}.num_heads`` of a config's text,
    read with ``ast`` (the text comes from a file: it is never executed)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None, ''
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == 'model' for t in stmt.targets):
            model = _kwargs(stmt.value)
            for part in ('student', 'backbone', 'encoder'):
                heads = _literal(_kwargs(model.get(part)).get('num_heads', ast.Constant(None)))
                if isinstance(heads, int):
                    return heads, f'meta.cfg model.{part}.num_heads'
    return None, ''


def recorded_heads(path: str) -> Tuple[Optional[int], str]:
    """(heads, where it was read) from the checkpoint's own records, or
    (None, '') when it has none. Read through checkpoint_io, the door (and
    safety policy) of every checkpoint."""
    if osp.isdir(path) or path.endswith('.safetensors'):  # Hugging Face: config.json
        config = osp.join(path if osp.isdir(path) else osp.dirname(path), 'config.json')
        if osp.isfile(config):
            with open(config, encoding='utf-8') as f:
                heads = json.load(f).get('num_attention_heads')
            if isinstance(heads, int):
                return heads, f'{config} num_attention_heads'
        return None, ''
    ckpt = load_checkpoint_file(path, map_location='cpu')
    if not isinstance(ckpt, dict):
        return None, ''
    meta = ckpt.get('meta')
    if isinstance(meta, dict) and isinstance(meta.get('cfg'), str):
        heads, where = heads_from_cfg_text(meta['cfg'])
        if heads:
            return heads, where
    args = ckpt.get('args')
    args = vars(args) if hasattr(args, '__dict__') else args
    if isinstance(args, dict):
        for key in ('num_heads', 'encoder_num_heads'):
            if isinstance(args.get(key), int):
                return args[key], f'args.{key}'
        match = re.search(r'(?:^|_)(' + '|'.join(SIZE_HEADS) + r')(?:_|$)', str(args.get('model')))
        if match:
            return SIZE_HEADS[match.group(1)], f"args.model={args['model']!r}"
    return None, ''


def choose_heads(dims: int, asked: Optional[int], recorded: Optional[int], where: str,
                 source: str) -> Tuple[int, str]:
    """The head count to export and how it was decided; raises ValueError
    (the caller's mismatch type) when ``asked`` contradicts the checkpoint
    or does not fit ``dims``."""
    lo, hi = HEAD_DIM_RANGE
    if asked is not None and recorded is not None and asked != recorded:
        raise ValueError(
            f'{source}: --num-heads {asked} but the checkpoint was trained with {recorded} heads '
            f'({where}); heads change no weight shape, so this would export without error and '
            f'fine-tune an attention the weights never learned. Use --num-heads {recorded} '
            '(or leave it out)')
    heads = asked or recorded
    how = 'given' if asked else where
    if heads is None:
        fits = [h for h in range(1, dims + 1) if dims % h == 0 and lo <= dims // h <= hi]
        if not fits:
            raise ValueError(f'{source}: width {dims} has no head count with a head dim in '
                             f'{lo}..{hi}; give --num-heads')
        heads = min(fits, key=lambda h: abs(dims // h - 64))
        how = (f'guessed (head dim {dims // heads}, the checkpoint does not record its heads; '
               'give --num-heads to be sure)')
    if heads < 1 or dims % heads:
        raise ValueError(f'{source}: num_heads={heads} ({how}) does not divide the width '
                         f'embed_dims={dims}')
    if not lo <= dims // heads <= hi:
        raise ValueError(f'{source}: num_heads={heads} ({how}) gives a head dim of '
                         f'{dims // heads} for embed_dims={dims}; expected {lo}..{hi} '
                         '(ViTs use 64)')
    return heads, how
