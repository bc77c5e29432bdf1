"""Paired statistics over seeds: is variant A better than variant B?

Each seed gives A and B the same clips and teacher, so the comparison is
on the per-seed differences ``d = A - B``. Two 95% intervals for their
mean are reported:

- **paired t** (the chosen one): ``mean +/- t_{0.975, n-1} * sd / sqrt(n)``
  with the sample sd (n - 1);
- **percentile bootstrap**: the 2.5 / 97.5 percentiles of the means of
  ``resamples`` resamples (with replacement) of the n differences, from a
  seeded generator (deterministic). With few seeds it is narrower than the
  t interval (it ignores the uncertainty of the sd): a cross-check only.

``holds``: the paired-t interval lies above zero (mean > 0 and the lower
bound > 0). With fewer than 2 seeds there is no interval: None, a reason.
"""
import math
from typing import Dict, Optional

import numpy as np


def _interval_reason(n: int) -> Optional[str]:
    if n < 2:
        return f'n={n} paired seed(s): no spread, no interval'
    return None


def t_half_width(sd: float, n: int, confidence: float = 0.95) -> float:
    """Half-width ``t_{(1+c)/2, n-1} * sd / sqrt(n)`` of the t interval of a
    mean of ``n`` values with sample sd ``sd``; infinite for ``n < 2``."""
    from scipy.stats import t
    if n < 2:
        return math.inf
    return float(t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n))


def paired_t_interval(diffs, confidence: float = 0.95):
    """(low, high) of the paired-t interval of the mean of ``diffs``, or None
    for fewer than 2 values."""
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2:
        return None
    half = t_half_width(d.std(ddof=1), len(d), confidence)
    return float(d.mean() - half), float(d.mean() + half)


def bootstrap_interval(diffs, confidence: float = 0.95, resamples: int = 10000,
                       seed: int = 0):
    """(low, high) percentile-bootstrap interval of the mean of ``diffs``,
    or None for fewer than 2 values."""
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2:
        return None
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(1)
    alpha = 1 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def paired_stats(a: Dict[int, float], b: Dict[int, float], confidence: float = 0.95,
                 resamples: int = 10000, seed: int = 0) -> dict:
    """Statistics of ``a[s] - b[s]`` over the seeds ``s`` (both dicts must
    hold the same seeds).

    Returns dict(seeds, diffs, n, mean, sd, t=(low, high) or None,
    bootstrap=(low, high) or None, method='paired t', confidence,
    holds, reason (why there is no interval, else None)).
    """
    if set(a) != set(b):
        raise ValueError(f'paired statistics need the same seeds: only in A '
                         f'{sorted(set(a) - set(b))}, only in B {sorted(set(b) - set(a))}')
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must lie in (0, 1), got {confidence}')
    seeds = sorted(a)
    diffs = [float(a[s]) - float(b[s]) for s in seeds]
    n = len(diffs)
    mean = float(np.mean(diffs)) if n else float('nan')
    sd = float(np.std(diffs, ddof=1)) if n > 1 else None
    t_iv = paired_t_interval(diffs, confidence)
    return dict(seeds=seeds, diffs=diffs, n=n, mean=mean, sd=sd, t=t_iv,
                bootstrap=bootstrap_interval(diffs, confidence, resamples, seed),
                method='paired t', confidence=confidence, resamples=resamples,
                holds=bool(t_iv is not None and mean > 0 and t_iv[0] > 0),
                reason=_interval_reason(n))


def format_diff(stats: dict, digits: int = 1, interval: str = 't') -> str:
    """``'+3.2 [+1.0, +5.4] (paired t, n=5)'``; ``interval='bootstrap'``
    gives the bootstrap one; without an interval ``'+3.2 (n=1: no
    interval)'``."""
    if interval not in ('t', 'bootstrap'):
        raise ValueError(f"interval must be 't' or 'bootstrap', got {interval!r}")
    f = f'{{:+.{digits}f}}'
    iv = stats[interval]
    if iv is None:
        return f'{f.format(stats["mean"])} (n={stats["n"]}: no interval)'
    name = 'paired t' if interval == 't' else 'bootstrap'
    return (f'{f.format(stats["mean"])} [{f.format(iv[0])}, {f.format(iv[1])}] '
            f'({name}, n={stats["n"]})')


# -- protocol v3: teacher dose-response and the gate against the untrained net
def slope_interval(x_by_stage: Dict[object, float],
                   y_by_stage_and_seed: Dict[object, Dict[int, float]],
                   confidence: float = 0.95, resamples: int = 10000, seed: int = 0) -> dict:
    """The slope of a student metric on the teacher metric, seeds as
    replicates (protocol v3, the teacher dose-response).

    ``x_by_stage[stage]``: the teacher's metric at each teacher stage (one
    teacher, so one number per stage); ``y_by_stage_and_seed[stage][seed]``:
    the student distilled from that stage with that seed. Every stage needs
    the same seeds.

    The regression (chosen here, before any v3 result): for each seed
    ``s``, the ordinary least-squares slope ``b_s`` of ``y[., s]`` on ``x``
    over the stages; the reported slope is the mean of the ``b_s`` and its
    interval the t interval over seeds, ``mean +/- t_{0.975, n-1} * sd(b) /
    sqrt(n)`` (:func:`paired_t_interval`). A seed's students share its
    random draws across stages, so its slope is a within-seed contrast (the
    pairing by seed of v2, with a line instead of a difference); the seeds
    are the independent replicates. With the same x for every seed the mean
    of the ``b_s`` equals the pooled OLS slope over all (stage, seed) points
    (the slope is linear in y), so only the interval differs from a pooled
    fit, which would treat the stages x seeds points as independent. The
    percentile bootstrap of the ``b_s`` is a cross-check, as in
    :func:`paired_stats`.

    Returns dict(slope, t=(low, high), bootstrap=(low, high), holds (the t
    interval above zero), per_seed {seed: b_s}, intercept (pooled), sd,
    n_seeds, n_stages, stages, method, confidence). Refuses (``ValueError``
    naming the problem) fewer than 2 stages, fewer than 2 seeds, a constant
    teacher metric, stages or seeds that do not match, non-finite values.
    """
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must lie in (0, 1), got {confidence}')
    stages = list(x_by_stage)
    if set(stages) != set(y_by_stage_and_seed):
        raise ValueError(
            'slope: the teacher metric and the student metric need the same stages: only in x '
            f'{[s for s in stages if s not in y_by_stage_and_seed]}, only in y '
            f'{[s for s in y_by_stage_and_seed if s not in x_by_stage]}')
    if len(stages) < 2:
        raise ValueError(f'slope: {len(stages)} teacher stage(s) {stages}: a slope needs at '
                         'least 2 stages (e.g. untrained and trained)')
    seeds = sorted(y_by_stage_and_seed[stages[0]])
    for st in stages:
        got = sorted(y_by_stage_and_seed[st])
        if got != seeds:
            raise ValueError(f'slope: stage {st!r} has seeds {got}, stage {stages[0]!r} has '
                             f'{seeds}; every stage needs the same seeds (pairing by seed)')
    if len(seeds) < 2:
        raise ValueError(f'slope: {len(seeds)} seed(s) {seeds}: no spread over seeds, no '
                         'interval; run at least 2 seeds per stage')
    x = np.array([float(x_by_stage[st]) for st in stages])
    y = np.array([[float(y_by_stage_and_seed[st][s]) for s in seeds] for st in stages])
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f'slope: non-finite values (x={x.tolist()}, y={y.tolist()})')
    dx = x - x.mean()
    sxx = float((dx ** 2).sum())
    if sxx <= 1e-12 * max(1.0, float((x ** 2).sum())):
        raise ValueError(f'slope: the teacher metric is the same at every stage '
                         f'({dict(zip(stages, x.tolist()))}): no slope; the stages must '
                         'differ in teacher quality')
    per_seed = (dx[:, None] * y).sum(0) / sxx  # OLS slope of each seed's column
    slope = float(per_seed.mean())
    t_iv = paired_t_interval(per_seed, confidence)
    return dict(slope=slope, t=t_iv,
                bootstrap=bootstrap_interval(per_seed, confidence, resamples, seed),
                holds=bool(slope > 0 and t_iv[0] > 0),
                per_seed={s: float(b) for s, b in zip(seeds, per_seed)},
                intercept=float(y.mean() - slope * x.mean()),
                sd=float(per_seed.std(ddof=1)), n_seeds=len(seeds), n_stages=len(stages),
                stages=stages, confidence=confidence, resamples=resamples,
                method='per-seed OLS slope over stages, t interval over seeds')


def untrained_margin(trained_correct, untrained_correct, confidence: float = 0.95,
                     resamples: int = 10000, seed: int = 0) -> dict:
    """The gate against the untrained network (protocol v3, item 0): how
    many points of top-1 the trained teacher's features beat the untrained
    network's on the same validation clips, with a paired bootstrap
    interval over clips.

    ``trained_correct`` / ``untrained_correct``: one 0/1 (or bool) per
    validation clip, in the same clip order: whether the probe (or k-NN) on
    that network's features got the clip right. The margin is ``100 *
    (mean(trained) - mean(untrained))``; the interval is the percentile
    bootstrap of it over ``resamples`` resamples of the clips (with
    replacement, the same resampled clips for both networks: paired),
    drawn from ``numpy.random.default_rng(seed)`` (deterministic).
    ``passed``: the interval's lower bound is above zero.

    Returns dict(margin, interval=(low, high), passed, trained_top1,
    untrained_top1, n_clips, method, confidence, resamples, seed).
    """
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must lie in (0, 1), got {confidence}')
    a = np.asarray(trained_correct)
    b = np.asarray(untrained_correct)
    for name, v in (('trained_correct', a), ('untrained_correct', b)):
        if v.ndim != 1:
            raise ValueError(f'{name} must be one value per clip (1-D), got shape {v.shape}')
        if not np.isin(v, (0, 1)).all():
            raise ValueError(f'{name} must hold 0/1 (or bool) per clip, got values '
                             f'{sorted(set(np.unique(v).tolist()) - {0, 1})[:5]}')
    if len(a) != len(b):
        raise ValueError(f'trained_correct has {len(a)} clips, untrained_correct {len(b)}: '
                         'both must score the same validation clips in the same order')
    if len(a) < 2:
        raise ValueError(f'{len(a)} validation clip(s): no interval over clips')
    d = 100.0 * (a.astype(float) - b.astype(float))
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(1)
    alpha = 1 - confidence
    low, high = (float(v) for v in np.quantile(means, [alpha / 2, 1 - alpha / 2]))
    return dict(margin=float(d.mean()), interval=(low, high), passed=bool(low > 0),
                trained_top1=100.0 * float(a.mean()), untrained_top1=100.0 * float(b.mean()),
                n_clips=len(d), method='paired percentile bootstrap over clips',
                confidence=confidence, resamples=resamples, seed=seed)
