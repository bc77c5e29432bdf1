"""Read encoder weights from the checkpoint formats met in the wild
(method.md §7) into :class:`VideoViT` names, with errors that say what is
wrong. :func:`open_checkpoint` reads a file once into a
:class:`CheckpointFile` (tensors + what the file records about itself:
mmengine's ``meta``, the releases' ``args``, a Hugging Face
``config.json``), which exports and checks pass along instead of reading
the file again."""
import ast
import os.path as osp
import re
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch

from amd_mmaction.weights.hf import is_hf_path, read_hf_checkpoint
from amd_mmaction.weights.io import (NotACheckpointError, UntrustedCheckpointError,
                                     load_checkpoint_file)

# Prefixes that wrap the encoder, in order of preference.
ENCODER_PREFIXES = ('encoder.', 'backbone.', 'student.')
# Names that are not part of the encoder proper (heads, decoders, tables).
NON_ENCODER = re.compile(
    r'^(decoder|encoder_to_decoder|mask_token|head|cls_head|fc_norm|'
    r'decoder_pred|decoder_embed|decoder_norm|decoder_pos_embed|'
    r'decoder_blocks|aligner|pos_embed)(\.|$)')
# mmaction2 VisionTransformer -> VideoMAE names.
RENAMES = (
    (re.compile(r'^patch_embed\.projection\.'), 'patch_embed.proj.'),
    (re.compile(r'\.mlp\.layers\.0\.0\.'), '.mlp.fc1.'),
    (re.compile(r'\.mlp\.layers\.1\.'), '.mlp.fc2.'),
)


@dataclass(frozen=True)
class CheckpointFile:
    """One checkpoint file, read once: its tensors and what it records about
    itself, for every check and export that needs both.

    ``state``: the flat tensors (:func:`read_checkpoint`'s result; Hugging
    Face weights already renamed to VideoViT names). ``meta``: mmengine's
    ``meta`` (``meta['cfg']``: the training config's text), ``args``: the
    training arguments of the official VideoMAE / AMD / MAE releases,
    ``hf_config``: a Hugging Face folder's ``config.json``; each None when
    the file has none.
    """
    path: str
    state: Dict[str, torch.Tensor]
    meta: Any = None
    args: Any = None
    hf_config: Optional[dict] = None
    is_hf: bool = False

    def model_cfg(self) -> Optional[dict]:
        """``model`` of the training config saved in ``meta.cfg``, or None;
        read as literals, never executed (see :func:`model_cfg_from_text`)."""
        meta = self.meta
        if not isinstance(meta, dict) or not isinstance(meta.get('cfg'), str):
            return None
        return model_cfg_from_text(meta['cfg'])


def open_checkpoint(path: str) -> CheckpointFile:
    """Read a checkpoint file once (see :class:`CheckpointFile`).

    Accepts a bare state dict or a dict holding one under ``model``,
    ``module`` or ``state_dict``. A folder or a ``.safetensors`` file is
    read as Hugging Face VideoMAE weights, renamed to VideoViT names, with
    its ``config.json`` checked against them.
    """
    if is_hf_path(path):
        state, hf_config = read_hf_checkpoint(path)
        return CheckpointFile(path, state, hf_config=hf_config, is_hf=True)
    if not isinstance(path, str) or not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file {path!r} does not exist')
    try:
        # Never a full unpickle unless the file is trusted by name (weights.io).
        ckpt = load_checkpoint_file(path, map_location='cpu')
    except (UntrustedCheckpointError, NotACheckpointError):
        raise
    except Exception as err:  # unpickling garbage raises anything (IndexError, ...)
        raise ValueError(f'checkpoint {path!r} is not a readable torch file '
                         f'(truncated or another format): {err}') from err
    if not isinstance(ckpt, dict):
        raise ValueError(f'checkpoint {path!r} holds a {type(ckpt).__name__}, '
                         'expected a dict (a state dict or one with a '
                         "'model', 'module' or 'state_dict' key)")
    top = ckpt
    for key in ('model', 'module', 'state_dict'):
        if key in ckpt and isinstance(ckpt[key], dict):
            ckpt = ckpt[key]
            break
    tensors = {k: v for k, v in ckpt.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ValueError(f'checkpoint {path!r} has no tensors; top-level keys: '
                         f'{sorted(ckpt)[:10]}')
    return CheckpointFile(path, tensors, meta=top.get('meta'), args=top.get('args'))


def read_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """The flat state dict of a checkpoint file (see :func:`open_checkpoint`)."""
    return open_checkpoint(path).state


_UNREAD = object()  # a config value that is not a literal


def _literal(node):
    """A config text's value as Python: literals, and ``dict(...)`` calls,
    lists, tuples and dicts of them; anything else is ``_UNREAD``."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == 'dict' and not node.args):
        return {k.arg: _literal(k.value) for k in node.keywords if k.arg}
    if isinstance(node, ast.Dict):
        return {k.value: _literal(v) for k, v in zip(node.keys, node.values)
                if isinstance(k, ast.Constant)}
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNREAD


def _known(value):
    """``value`` with the non-literal parts left out (None where alone)."""
    if isinstance(value, dict):
        return {k: _known(v) for k, v in value.items() if v is not _UNREAD}
    if isinstance(value, (list, tuple)):
        return type(value)(_known(v) for v in value)
    return None if value is _UNREAD else value


def model_cfg_from_text(text: str) -> Optional[dict]:
    """``model`` of a config's text (mmengine saves the resolved config in a
    checkpoint's ``meta.cfg``), read with ``ast``: the text comes from a
    file and is never executed. None when the text assigns no dict to
    ``model``; values that are not literals are left out."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    model = None
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == 'model' for t in stmt.targets):
            value = _known(_literal(stmt.value))
            model = value if isinstance(value, dict) else None
    return model


def to_encoder_state(state: Dict[str, torch.Tensor],
                     source: str = '<state dict>') -> Dict[str, torch.Tensor]:
    """Select the encoder's weights and rename them to VideoViT names.

    Handles ``module.`` (DDP), ``encoder.`` (VideoMAE/AMD pre-training),
    ``backbone.`` (mmaction2 recognizers), ``student.`` (this project),
    mmaction2's ``projection`` / ``mlp.layers`` names, MAE's 2-D
    ``patch_embed.proj`` and MAE's biased ``attn.qkv``.
    """
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    for prefix in ENCODER_PREFIXES:
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            break
    out = {}
    for k, v in state.items():
        if NON_ENCODER.match(k):
            continue
        for pattern, repl in RENAMES:
            k = pattern.sub(repl, k)
        out[k] = v
    if not any(k.startswith('blocks.') for k in out):
        raise ValueError(f'{source}: no encoder blocks found (keys like '
                         f'blocks.0.attn.qkv.weight); first keys: {sorted(state)[:8]}')
    return out


def load_encoder_weights(model: torch.nn.Module, state: Dict[str, torch.Tensor],
                         source: str = '<state dict>') -> None:
    """Strictly load ``state`` (already renamed) into ``model`` with errors
    naming keys and shapes. Image checkpoints (2-D conv) are given a time
    axis when the model's tubelet is 1."""
    own = model.state_dict()
    w = state.get('patch_embed.proj.weight')
    if w is not None and w.ndim == 4 and own['patch_embed.proj.weight'].ndim == 5:
        state = dict(state, **{'patch_embed.proj.weight': w.unsqueeze(2)})
    depth_ckpt = 1 + max((int(k.split('.')[1]) for k in state if k.startswith('blocks.')), default=-1)
    depth_model = 1 + max((int(k.split('.')[1]) for k in own if k.startswith('blocks.')), default=-1)
    if depth_ckpt != depth_model:
        raise ValueError(f'{source}: checkpoint has {depth_ckpt} blocks but the '
                         f'config builds {depth_model}; set depth={depth_ckpt}')
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
                  for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    problems = []
    if mismatched:
        problems.append('shape mismatch (wrong width/heads/patch?): ' + '; '.join(mismatched[:6]))
    if missing:
        problems.append(f'missing keys ({len(missing)}): {missing[:8]}')
    if unexpected:
        problems.append(f'unexpected keys ({len(unexpected)}): {unexpected[:8]}')
    if problems:
        raise ValueError(f'{source} does not fit the teacher encoder: ' + ' | '.join(problems))
    model.load_state_dict(state, strict=True)


def stored_pos_embed(state: Dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
    """The encoder's stored position table in a raw checkpoint state (MAE's
    ``pos_embed``, mmaction2's ``backbone.pos_embed``), or None."""
    names = {p + 'pos_embed' for p in ('',) + ENCODER_PREFIXES}
    for k, v in state.items():
        if (k[len('module.'):] if k.startswith('module.') else k) in names:
            return v
    return None


def check_stored_pos_embed(state: Dict[str, torch.Tensor], encoder: torch.nn.Module,
                           source: str = '<state dict>', tol: float = 1e-4) -> None:
    """Compare a checkpoint's stored position table with the fixed one the
    encoder recomputes (the stored one is never loaded).

    MAE stores its 2-D sin-cos table with a zero class-token row first:
    (1, 1 + N, C). A table that differs means the checkpoint was trained with
    other positions (learned, interpolated, another grid), so the encoder's
    features would silently be wrong. Raises for MAE-style checkpoints (a
    class-token row, or an encoder with a class token); warns otherwise.
    """
    from amd_mmaction.student.vit import sincos_2d_table, sinusoid_table
    table = stored_pos_embed(state)
    if table is None:
        return
    own = encoder.pos_embed[0].float()
    n, c = own.shape
    t = table.detach().float().reshape(-1, table.shape[-1])
    has_cls = t.shape[0] == n + 1
    problem = None
    if t.shape[1] != c or t.shape[0] not in (n, n + 1):
        problem = (f'has shape {tuple(table.shape)}, the encoder grid {encoder.grid} '
                   f'needs ({n} tokens, +1 with a class token) x {c}: wrong '
                   'img_size/patch_size/embed_dims?')
    else:
        if has_cls and float(t[0].abs().max()) > tol:
            problem = 'has a non-zero class-token row (MAE\'s is zeros)'
        t = t[1:] if has_cls else t
        err = float((t - own).abs().max())
        if problem is None and err > tol:
            hint = ''
            if float((t - sinusoid_table(n, c)[0]).abs().max()) <= tol:
                hint = " It matches pos_embed='sincos1d' (VideoMAE)."
            elif encoder.grid[0] == 1 and c % 4 == 0 and float(
                    (t - sincos_2d_table(encoder.grid[1], encoder.grid[2], c)[0]
                     ).abs().max()) <= tol:
                hint = " It matches pos_embed='sincos2d' (MAE)."
            problem = (f'differs from the fixed table the encoder recomputes '
                       f'(max |diff| {err:.3g}): learned or interpolated positions '
                       f'cannot be used by this encoder.{hint}')
    if problem is None:
        return
    msg = f'{source}: stored pos_embed {problem}'
    if has_cls or getattr(encoder, 'cls_token', None) is not None:
        raise ValueError(msg)
    warnings.warn(msg)
