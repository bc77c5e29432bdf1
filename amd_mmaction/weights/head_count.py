"""The attention head count of an exported backbone.

Heads change no weight shape, so a wrong ``--num-heads`` exports without a
single error and fine-tunes an attention the weights were never trained
for. The count is checked against what the checkpoint says about itself
(our checkpoints: ``meta.cfg``, mmengine's config text; the official
VideoMAE / AMD releases: ``args.model``, e.g.
``pretrain_videomae_small_patch16_224``; Hugging Face folders:
``config.json``), as read once by
:func:`amd_mmaction.weights.formats.open_checkpoint`, and against the width.
"""
import re
from typing import Optional, Tuple

from amd_mmaction.weights.hf_config import heads_in_config
from amd_mmaction.weights.formats import CheckpointFile

# a head of fewer dims cannot hold a useful query/key; ViTs use 32..128
HEAD_DIM_RANGE = (16, 256)
# the official model names' size word -> encoder heads (ViT-Ti/S/B/L/H/g)
SIZE_HEADS = {'tiny': 3, 'small': 6, 'base': 12, 'large': 16, 'huge': 16, 'giant': 16}


def recorded_heads(ckpt: CheckpointFile) -> Tuple[Optional[int], str]:
    """(heads, where it was read) from the checkpoint's own records, or
    (None, '') when it has none: a Hugging Face ``config.json``, the
    ``meta.backbone.num_heads`` tools/export_checkpoint.py writes, the
    ``model.{student,backbone,encoder}.num_heads`` of mmengine's saved
    config (``meta.cfg``), or the official releases' ``args``."""
    if ckpt.is_hf:
        return heads_in_config(ckpt.hf_config, ckpt.path)
    exported = ckpt.meta.get('backbone') if isinstance(ckpt.meta, dict) else None
    if isinstance(exported, dict) and isinstance(exported.get('num_heads'), int):
        return exported['num_heads'], 'meta.backbone.num_heads, written by the export'
    model = ckpt.model_cfg() or {}
    for part in ('student', 'backbone', 'encoder'):
        arch = model.get(part)
        heads = arch.get('num_heads') if isinstance(arch, dict) else None
        if isinstance(heads, int) and heads:
            return heads, f'meta.cfg model.{part}.num_heads'
    args = ckpt.args
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


def checkpoint_width(state) -> Optional[int]:
    """The encoder width of a checkpoint state (its patch embedding's output
    channels, in any of the names met), or None."""
    for key, value in state.items():
        if key.endswith(('patch_embed.proj.weight', 'patch_embed.projection.weight')):
            return int(value.shape[0])
    return None


def configured_heads_problem(configured: Optional[int], ckpt: CheckpointFile,
                             key: str = 'model.backbone.num_heads',
                             dims: Optional[int] = None) -> Optional[str]:
    """Why the configured head count ``configured`` (``key`` in the config)
    cannot fine-tune the weights of ``ckpt``, with the fix; None when it
    can. Heads change no weight shape, so a count other than the one the
    weights were trained with loads without an error and trains an
    attention the weights never learned (one that does not divide the width
    fails later with a bare reshape error). ``dims``: the model's width
    (used when the checkpoint's own cannot be read; when they differ, that
    is a weight-shape problem, not this one: None)."""
    if configured is None:
        return None
    if isinstance(configured, bool) or not isinstance(configured, int) or configured < 1:
        return f'{key}={configured!r} must be a positive integer (the attention head count)'
    width = checkpoint_width(ckpt.state)
    if width and dims and width != dims:
        return None  # another width: a weight-shape problem, which the loaders name
    recorded, where = recorded_heads(ckpt)
    dims = width or dims
    if recorded is not None and configured != recorded:
        return (f'{key}={configured} but the checkpoint\'s backbone was trained with '
                f'{recorded} heads ({where}). Heads change no weight shape: the weights '
                'would load and fine-tune an attention split they never learned'
                + (f' ({configured} does not even divide the width {dims})'
                   if dims and dims % configured else '')
                + f'. Fix: --cfg-options {key}={recorded}')
    if dims and dims % configured:
        fits = [h for h in range(1, dims + 1)
                if dims % h == 0 and HEAD_DIM_RANGE[0] <= dims // h <= HEAD_DIM_RANGE[1]]
        return (f'{key}={configured} does not divide the checkpoint\'s width '
                f'embed_dims={dims} (the attention would fail with a bare reshape error); '
                f'the checkpoint does not record its heads. Fix: --cfg-options {key}=H with '
                f'H one of {fits} (the pre-training student\'s head count)')
    return None


def backbone_heads_problem(backbone: dict, ckpt: dict, path: str) -> Optional[str]:
    """:func:`configured_heads_problem` for a fine-tuning config's
    ``model.backbone`` and a checkpoint already read (``ckpt``: the dict
    mmengine's loader returns for ``load_from``). A backbone without
    ``num_heads`` has its class's default."""
    import inspect

    import torch
    from mmaction.registry import MODELS
    heads = backbone.get('num_heads')
    if heads is None:
        cls = MODELS.get(backbone.get('type', ''))
        param = inspect.signature(cls).parameters.get('num_heads') if cls else None
        heads = None if param is None or param.default is param.empty else param.default
    state = ckpt
    for key in ('state_dict', 'model', 'module'):
        if isinstance(ckpt.get(key), dict):
            state = ckpt[key]
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    record = CheckpointFile(path, tensors, meta=ckpt.get('meta'), args=ckpt.get('args'))
    return configured_heads_problem(heads, record, 'model.backbone.num_heads',
                                    backbone.get('embed_dims'))
