"""The teacher gate: is a pre-trained teacher worth distilling from?

Two criteria, both on the protocol's validation clips:

(a) **reconstruction clearly below the trivial predictor**: the teacher's
    masked-pixel MSE ``recon`` (its own mask ratio and target
    normalisation, over a fixed seeded set of tube masks) must satisfy
    ``recon <= margin * trivial`` (margin 0.9: at least 10% below). The
    trivial predictor knows nothing about the clip beyond its visible
    pixels: for normalised targets (``target_norm`` 'channel' / 'patch') it
    predicts zeros, whose loss is ``(n-1)/n`` per tubelet of n values
    (unbiased variance; 0 for a constant tubelet), computed on the actual
    targets, not assumed; for raw 0-1 targets (``target_norm='none'``) it
    predicts each channel's mean over the clip's visible pixels.
(b) **a linear probe clearly above chance**: top-1 of the linear probe
    (:mod:`.linear`, trained on the train clips) on the validation clips
    ``>= factor * chance`` (factor 3; chance = 100 / classes).

The clips and views are those of the feature extraction (the fine-tuning
config's test pipeline; see :mod:`.features`).
"""
from types import SimpleNamespace
from typing import Dict, Optional

import numpy as np
import torch

from amd_mmaction.reproduce.features import (VIEWS_CONFIG, build_pretrainer, config_name, extract_features,
                       iter_clips, pretrain_config)


def teacher_gate(recon: float, trivial: float, probe_top1: float, num_classes: int,
                 margin: float = 0.9, factor: float = 3.0) -> dict:
    """Apply the two criteria to measured numbers (losses, top-1 in %).

    Returns dict(recon, trivial, recon_ratio, probe_top1, chance, passed,
    reasons (one line per failed criterion), margin, factor).
    """
    if num_classes < 2:
        raise ValueError(f'num_classes must be >= 2, got {num_classes}')
    chance = 100.0 / num_classes
    if factor * chance >= 100:
        raise ValueError(f'factor {factor} x chance {chance:.1f}% >= 100%: the probe '
                         'criterion could never pass')
    if not trivial > 0:
        raise ValueError(f'trivial loss must be > 0, got {trivial} (constant clips?)')
    ratio = recon / trivial
    reasons = []
    if not recon <= margin * trivial:  # also fails on NaN
        reasons.append(f'reconstruction {recon:.4f} is not clearly below the trivial '
                       f'predictor {trivial:.4f} (ratio {ratio:.3f} > margin {margin})')
    if not probe_top1 >= factor * chance:
        reasons.append(f'linear probe top-1 {probe_top1:.1f}% < {factor} x chance '
                       f'{chance:.1f}% = {factor * chance:.1f}%')
    return dict(recon=float(recon), trivial=float(trivial), recon_ratio=float(ratio),
                probe_top1=float(probe_top1), chance=chance, passed=not reasons,
                reasons=reasons, margin=margin, factor=factor)


def mask_ratio_of(config, checkpoint: Optional[str] = None,
                  cfg_options: Optional[dict] = None) -> float:
    """The student ratio of the ``AsymmetricTubeMask`` in the train pipeline
    of a pre-training config (:func:`.features.pretrain_config`): the ratio
    the model was pre-trained with."""
    cfg = pretrain_config(config, checkpoint, cfg_options)
    found = []

    def walk(t):
        if isinstance(t, dict):
            if t.get('type') == 'AsymmetricTubeMask':
                found.append(t['student_ratio'])
            for v in t.get('transforms', []):
                walk(v)
    for t in cfg.train_dataloader.dataset.pipeline:
        walk(t)
    if len(found) != 1:
        raise ValueError(f'{config_name(config, checkpoint)}: expected one AsymmetricTubeMask '
                         f'in train_dataloader.dataset.pipeline, found {len(found)}')
    return float(found[0])


def _draw_masks(rng: np.random.Generator, count: int, grid, ratio: float) -> torch.Tensor:
    from amd_mmaction.masks.tube import num_masked, sample_tube_masks
    n = num_masked(ratio, grid[1] * grid[2])
    return torch.from_numpy(np.stack([sample_tube_masks(grid, n, n, rng)[0]
                                      for _ in range(count)]))


def gate_masks(num_clips: int, num_views: int, num_masks: int, grid, ratio: float,
               seed: int = 0) -> torch.Tensor:
    """(num_clips, num_views, num_masks, tokens) bool tube masks (True =
    hidden), drawn in that order from one seeded generator: the masks
    :func:`reconstruction_losses` uses, whatever its batch size."""
    rng = np.random.default_rng(seed)
    m = _draw_masks(rng, num_clips * num_views * num_masks, grid, ratio)
    return m.reshape(num_clips, num_views, num_masks, -1)


@torch.no_grad()
def reconstruction_losses(model, ann_file: str, data_prefix: str, mask_ratio: float,
                          num_masks: int = 2, seed: int = 0,
                          views_config: str = VIEWS_CONFIG, batch_size: int = 8) -> dict:
    """Masked-pixel MSE of ``model`` (an ``AMDPretrainer``) and of the trivial
    predictor on the same masked tokens of every view of every clip, each
    view under ``num_masks`` masks (:func:`gate_masks`, so deterministic).

    Returns dict(recon, trivial, target_norm, values_per_norm (n),
    trivial_zero_bound ((n-1)/n, the zero predictor's loss on a
    non-constant normalised tubelet; None for raw targets), clips).
    """
    from amd_mmaction.student.vit import gather_tokens
    model.eval()
    enc, head = model.student, model.head
    norm = head.target_norm
    sums = dict(recon=0.0, trivial=0.0, count=0)
    done, rng = 0, np.random.default_rng(seed)
    for clips, _ in iter_clips(ann_file, data_prefix, views_config, batch_size):
        done += len(clips)
        masks = _draw_masks(rng, len(clips) * len(clips[0]) * num_masks, enc.grid, mask_ratio)
        x = model.data_preprocessor(dict(inputs=clips, data_samples=None),
                                    training=False)['inputs']
        x = x.flatten(0, 1).repeat_interleave(num_masks, 0)  # (B*V*M, C, T, H, W)
        pixels = torch.stack(clips).flatten(0, 1).repeat_interleave(num_masks, 0) / 255.0
        samples = [SimpleNamespace(mask_stu=m) for m in masks]
        out = model.reconstruct(x, samples)
        target = head.target(pixels.float())
        masked = gather_tokens(target, out['mask_idx'])
        sums['recon'] += float(((out['pred'].float() - masked) ** 2).sum())
        if norm == 'none':  # raw pixels: each channel's mean over the visible pixels
            C = pixels.shape[1]
            visible = gather_tokens(target, out['vis_idx'])
            mean = visible.reshape(len(x), -1, C).mean(1)  # values are (t, p, q, c)
            trivial = masked.reshape(len(x), -1, C) - mean[:, None]
        else:
            trivial = masked  # the zero predictor
        sums['trivial'] += float((trivial ** 2).sum())
        sums['count'] += masked.numel()
    n = enc.tubelet_size * enc.patch_size ** 2 * (3 if norm == 'patch' else 1)
    return dict(recon=sums['recon'] / sums['count'], trivial=sums['trivial'] / sums['count'],
                target_norm=norm, values_per_norm=n,
                trivial_zero_bound=None if norm == 'none' else (n - 1) / n, clips=done)


def run_teacher_gate(config, checkpoint: Optional[str], data: Dict[str, str],
                     mask_ratio: Optional[float] = None, num_masks: int = 2, seed: int = 0,
                     margin: float = 0.9, factor: float = 3.0,
                     num_classes: Optional[int] = None, init_seed: int = 0,
                     views_config: str = VIEWS_CONFIG, batch_size: int = 8,
                     cfg_options: Optional[dict] = None,
                     knn: Optional[dict] = None) -> dict:
    """The whole gate for a teacher: its pre-training ``config`` (path,
    ``Config``, or None for the one saved in ``checkpoint``; ``cfg_options``
    on top) at ``checkpoint`` (None: a fresh encoder, the random-teacher
    control).

    ``data``: dict(root, train, val) as written by ``make_motion_dataset``.
    ``mask_ratio``: None reads it from the config. The target normalisation
    is the config's ``model.head.target_norm``. ``knn``: the k-NN's
    options (k, temperature). Returns :func:`teacher_gate`'s dict plus
    target_norm, mask_ratio, train_probe_top1, knn_top1, and per validation
    clip (list order) whether the probe and the k-NN got it right
    (``probe_correct``, ``knn_correct``: 0/1 lists, for
    :func:`..stats.untrained_margin`).
    """
    from amd_mmaction.reproduce.knn import knn_predict
    from amd_mmaction.reproduce.linear import linear_probe
    cfg = pretrain_config(config, checkpoint, cfg_options)
    ratio = mask_ratio_of(cfg) if mask_ratio is None else float(mask_ratio)
    model = build_pretrainer(cfg, checkpoint, init_seed)
    rec = reconstruction_losses(model, data['val'], data['root'], ratio, num_masks, seed,
                                views_config, batch_size)
    feats = {s: extract_features(data[s], data['root'], cfg, checkpoint, init_seed,
                                 views_config, batch_size) for s in ('train', 'val')}
    probe = linear_probe(*feats['train'], *feats['val'], num_classes=num_classes)
    classes = num_classes or int(max(feats['train'][1].max(), feats['val'][1].max())) + 1
    labels = feats['val'][1].long()
    knn_pred = knn_predict(feats['train'][0], feats['train'][1], feats['val'][0],
                           num_classes=classes, **(knn or {}))
    knn_correct = (knn_pred == labels).long().tolist()
    out = teacher_gate(rec['recon'], rec['trivial'], probe['top1'], classes, margin, factor)
    out.update(target_norm=rec['target_norm'], mask_ratio=ratio,
               train_probe_top1=probe['train_top1'],
               knn_top1=100.0 * sum(knn_correct) / len(knn_correct),
               probe_correct=(torch.tensor(probe['pred']) == labels).long().tolist(),
               knn_correct=knn_correct)
    return out
