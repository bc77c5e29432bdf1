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


def paired_t_interval(diffs, confidence: float = 0.95):
    """(low, high) of the paired-t interval of the mean of ``diffs``, or None
    for fewer than 2 values."""
    from scipy.stats import t
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2:
        return None
    half = t.ppf(0.5 + confidence / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
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
