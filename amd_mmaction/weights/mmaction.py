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

from amd_mmaction.weights.formats import (CheckpointFile, open_checkpoint, read_checkpoint,
                                          to_encoder_state)
from amd_mmaction.weights.head_count import (choose_heads, configured_heads_problem,
                                             recorded_heads)

# VideoViT (official VideoMAE) names -> mmaction2 VisionTransformer names.
TO_MMACTION = (
    (re.compile(r'^patch_embed\.proj\.'), 'patch_embed.projection.'),
    (re.compile(r'\.mlp\.fc1\.'), '.mlp.layers.0.0.'),
    (re.compile(r'\.mlp\.fc2\.'), '.mlp.layers.1.'),
)
# Fixed buffers and fresh layers the pre-training checkpoint cannot hold.
REBUILT = ('pos_embed',)
FRESH = re.compile(r'^fc_norm\.')
# A fine-tuned recogniser's own layers, in any wrapping: the trained
# fc_norm (mmaction2 ``backbone.fc_norm``, VideoMAE / Hugging Face
# ``fc_norm``) and the classifier (mmaction2 ``cls_head.*``; VideoMAE's
# ``head.weight``/``head.bias``, Hugging Face's ``classifier``, both read
# as mmaction2's ``cls_head.fc_cls``).
TRAINED_FC_NORM = re.compile(r'^(?:module\.)?(?:backbone\.|encoder\.)?(fc_norm\.(?:weight|bias))$')
CLASSIFIER = ((re.compile(r'^(?:module\.)?(cls_head\..+)$'), r'\1'),
              (re.compile(r'^(?:module\.)?head\.(weight|bias)$'), r'cls_head.fc_cls.\1'))


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


def finetuned_layers(state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor],
                                                               Dict[str, torch.Tensor]]:
    """(fc_norm, classifier) of a fine-tuned recogniser's raw checkpoint
    ``state``: the trained ``fc_norm`` in VisionTransformer names
    (``fc_norm.weight``/``.bias``) and the classifier in mmaction2
    Recognizer3D names (``cls_head.*``). Both empty for a pre-training
    checkpoint, which has neither."""
    fc_norm, classifier = {}, {}
    for key, value in state.items():
        match = TRAINED_FC_NORM.match(key)
        if match:
            fc_norm[match.group(1)] = value
            continue
        for pattern, name in CLASSIFIER:
            if pattern.match(key):
                classifier[pattern.sub(name, key)] = value
                break
    return fc_norm, classifier


def group_keys(keys) -> str:
    """``keys`` for a summary line: a few listed, many grouped by their
    first name (``decoder.* (14)``)."""
    keys = sorted(keys)
    if len(keys) <= 6:
        return ', '.join(keys) if keys else 'nothing'
    groups = {}
    for k in keys:
        groups.setdefault(k.split('.')[0], []).append(k)
    return ', '.join(f'{g}.* ({len(v)})' if len(v) > 1 or v[0] != g else g
                     for g, v in sorted(groups.items()))


def convert_state(encoder: Dict[str, torch.Tensor], target: Dict[str, torch.Tensor],
                  source: str = '<state dict>', fc_norm_from_norm: bool = False,
                  strict: bool = True, trained_fc_norm: Optional[Dict[str, torch.Tensor]] = None
                  ) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Map encoder weights (VideoViT names, see ``to_encoder_state``) onto the
    state dict ``target`` of an mmaction2 ``VisionTransformer``.

    ``pos_embed`` and ``fc_norm`` come from ``target`` (the fixed table for
    the target grid; a fresh LayerNorm, as VideoMAE fine-tuning starts), the
    rest from the checkpoint. The pre-training final ``norm`` feeds the
    decoder and is dropped unless ``fc_norm_from_norm`` (or the target has no
    mean pooling and keeps ``norm``). ``trained_fc_norm``: a fine-tuned
    checkpoint's own ``fc_norm`` (:func:`finetuned_layers`), kept instead of
    a fresh one. Returns (state, report) where report lists ``carried``
    (``kept``: the trained ``fc_norm`` among them), ``rebuilt``, ``fresh``,
    ``dropped`` and ``unexpected`` keys; raises :class:`CheckpointMismatch`
    on missing weights, wrong depth or shapes, and (``strict``) unexpected
    keys.
    """
    state = _rename(encoder)
    has_fc_norm = any(FRESH.match(k) for k in target)
    trained_fc_norm = dict(trained_fc_norm or {})
    dropped = []
    if trained_fc_norm and not has_fc_norm:
        raise CheckpointMismatch(
            f'{source}: the checkpoint was fine-tuned with mean pooling (it has a trained '
            f'{", ".join(sorted(trained_fc_norm))}), but the target VisionTransformer has no '
            'fc_norm (use_mean_pooling=False / --no-mean-pooling) and would need a final norm '
            'the checkpoint does not have. Export with mean pooling (leave out '
            '--no-mean-pooling)')
    if trained_fc_norm and fc_norm_from_norm:
        raise CheckpointMismatch(
            f'{source}: the checkpoint has a trained fc_norm (fine-tuned); fc_norm_from_norm '
            '(--fc-norm-from-norm) would replace it. Leave the flag out to keep it')
    if has_fc_norm:
        for suffix in ('weight', 'bias'):
            if f'norm.{suffix}' in state:
                value = state.pop(f'norm.{suffix}')
                if fc_norm_from_norm:
                    state[f'fc_norm.{suffix}'] = value
                else:
                    dropped.append(f'norm.{suffix}')
    state.update(trained_fc_norm)
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
                  kept=sorted(trained_fc_norm), rebuilt=rebuilt, fresh=fresh,
                  dropped=dropped, unexpected=unexpected)
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


def convert_checkpoint(ckpt: CheckpointFile, target: Dict[str, torch.Tensor],
                       fc_norm_from_norm: bool = False, strict: bool = True,
                       keep_classifier: bool = True
                       ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor], dict]:
    """:func:`convert_state` for a whole checkpoint file (read once by
    ``open_checkpoint``), pre-training or fine-tuned.

    A fine-tuned recogniser (:func:`finetuned_layers`) keeps its trained
    ``fc_norm`` (never re-initialised) and, with ``keep_classifier``, its
    classifier (``cls_head.*``, returned apart: it is not the backbone's).
    This project's own export of a pre-training (its ``meta.report`` lists
    ``fc_norm`` as fresh) has a fresh ``fc_norm`` again.
    One fine-tuned without mean pooling (a trained final ``norm``, no
    ``fc_norm``) for a target with mean pooling is refused: its norm would
    be dropped and a fresh ``fc_norm`` trained in its place.

    Returns (backbone state, classifier, report); the report adds to
    :func:`convert_state`'s ``classifier`` (the classifier keys kept) and
    ``left_behind`` (the file's tensors that reach no output: decoder,
    aligner/generators, [MASK] token, a classifier not kept; its stored
    position table, rebuilt, aside).
    """
    source = ckpt.path
    encoder = to_encoder_state(ckpt.state, source=source)
    fc_norm, classifier = finetuned_layers(ckpt.state)
    earlier = ckpt.meta.get('report') if isinstance(ckpt.meta, dict) else None
    fresh_before = {}
    if fc_norm and isinstance(earlier, dict) and set(fc_norm) <= set(earlier.get('fresh') or ()):
        # our own export of a pre-training: its fc_norm was fresh, and is again
        fresh_before, fc_norm = fc_norm, {}
    pooled = any(FRESH.match(k) for k in target)
    if classifier and not fc_norm and pooled and 'norm.weight' in encoder \
            and not fc_norm_from_norm:
        raise CheckpointMismatch(
            f'{source}: a fine-tuned checkpoint ({group_keys(classifier)}) trained without '
            'mean pooling: its trained final norm would be dropped and a fresh fc_norm '
            'trained in its place. Export with --no-mean-pooling (the target keeps the '
            'final norm, as the checkpoint did) or with --fc-norm-from-norm (the trained '
            'norm becomes the target\'s fc_norm)')
    state, report = convert_state(encoder, target, source=source,
                                  fc_norm_from_norm=fc_norm_from_norm, strict=strict,
                                  trained_fc_norm=fc_norm)
    kept = classifier if keep_classifier else {}
    used = {id(v) for part in (encoder, fc_norm, kept, fresh_before) for v in part.values()}
    report['classifier'] = sorted(kept)
    report['left_behind'] = sorted(k for k, v in ckpt.state.items()
                                   if id(v) not in used and not k.endswith('pos_embed'))
    return state, kept, report


def describe_report(report: dict, clip: str = 'the target clip') -> list:
    """The lines that say what a conversion did: kept, carried, rebuilt,
    newly initialised and dropped (every tensor of the source that reaches
    no output is named or counted)."""
    classifier = report.get('classifier') or []
    kept = [f'fc_norm ({", ".join(report["kept"])}), trained' if report.get('kept') else '',
            f'classifier ({", ".join(classifier)})' if classifier else '']
    kept = '; '.join(k for k in kept if k)
    left = report.get('left_behind') or []
    heads = [k for k in left if any(p.match(k) for p, _ in CLASSIFIER)]
    left = [k for k in left if k not in heads]
    dropped = [f'{group_keys(report["dropped"])} (the pre-training final norm)'
               if report.get('dropped') else '',
               f'{group_keys(report["unexpected"])} (no place in the target, strict=False)'
               if report.get('unexpected') else '',
               f'{group_keys(heads)} (the classifier, not kept)' if heads else '',
               f'{group_keys(left)} (not the encoder)' if left else '']
    dropped = '; '.join(d for d in dropped if d)
    return [f'carried over: {len(report["carried"])} tensors',
            f'kept from the fine-tuned checkpoint: {kept or "nothing (not a fine-tuned one)"}',
            f'rebuilt for {clip}: {report["rebuilt"]}',
            f'newly initialised: {group_keys(report["fresh"]) if report["fresh"] else "nothing"}',
            f'dropped: {dropped or "nothing"}']


def export_checkpoint(src: str, dst: str, num_frames: int = 16, img_size: int = 224,
                      fc_norm_from_norm: bool = False, strict: bool = True,
                      keep_classifier: bool = True, **backbone) -> dict:
    """Write ``dst``: ``{'state_dict': {'backbone.*': ...}, 'meta': {...}}``
    for an mmaction2 Recognizer3D whose VisionTransformer sees
    ``num_frames`` x ``img_size`` clips. ``backbone`` takes further
    VisionTransformer arguments (num_heads, use_mean_pooling, ...).

    A fine-tuned checkpoint exported again (e.g. for another clip length)
    keeps its trained ``fc_norm`` and, unless ``keep_classifier=False``,
    its classifier (``cls_head.*`` beside ``backbone.*``; leave it behind to
    fine-tune on another label set); see :func:`convert_checkpoint`.
    Returns the report of :func:`convert_checkpoint` plus the backbone
    config. ``src`` is read once: its tensors and its records (heads)
    together."""
    ckpt = open_checkpoint(src)
    encoder = to_encoder_state(ckpt.state, source=src)
    try:  # heads change no shape: check them against the file's own records
        backbone['num_heads'], heads_from = choose_heads(
            infer_backbone(encoder, src)['embed_dims'], backbone.get('num_heads'),
            *recorded_heads(ckpt), source=src)
    except ValueError as err:
        raise CheckpointMismatch(str(err)) from err
    target = build_target(encoder, num_frames, img_size, source=src, **backbone)
    state, classifier, report = convert_checkpoint(
        ckpt, target.state_dict(), fc_norm_from_norm=fc_norm_from_norm, strict=strict,
        keep_classifier=keep_classifier)
    cfg = dict(infer_backbone(encoder, src), num_frames=num_frames,
               img_size=img_size, **backbone)
    meta = dict(source=osp.abspath(src), backbone=cfg, report=report,
                converted_by='amd_mmaction.weights.mmaction')
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    out = {f'backbone.{k}': v for k, v in state.items()}
    out.update(classifier)
    torch.save(dict(state_dict=out, meta=meta), dst)
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
            ckpt = open_checkpoint(self.checkpoint)
            # a backbone initialiser has no place for a classifier: it is left behind
            state, _, report = convert_checkpoint(
                ckpt, module.state_dict(), fc_norm_from_norm=self.fc_norm_from_norm,
                strict=self.strict, keep_classifier=False)
            # heads change no shape: checked against what the checkpoint records
            heads = getattr(getattr(module.blocks[0], 'attn', None), 'num_heads', None) \
                if len(getattr(module, 'blocks', ())) else None
            problem = configured_heads_problem(heads, ckpt, 'model.backbone.num_heads',
                                               getattr(module, 'embed_dims', None))
            if problem:
                raise CheckpointMismatch(f'AMDPretrained {self.checkpoint}: {problem}')
            module.load_state_dict(state, strict=True)
            info = f'AMDPretrained: {self.checkpoint}: ' + '; '.join(describe_report(report))
            print_log(info, logger='current')
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=info)
