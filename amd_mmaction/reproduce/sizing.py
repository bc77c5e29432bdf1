"""How many seeds? The interval widths a finished run's spread predicts
for a protocol's seeds (``tools/reproduce.py plan --widths-from RUN``).

For every claim (better, worse) of the protocol that the finished run also
measured, the sample sd of its per-seed paired differences ``s`` gives the
expected half-width of the 95% paired-t interval with ``n`` seeds,
``t_{0.975, n-1} * s / sqrt(n)``, and the fewest seeds for a half-width of at
most ``target`` points (the issue's +/-5 points of probe). It assumes the
new run's seeds spread as the old run's did: an estimate to size a run, not
a result.
"""
from typing import Dict, List

import numpy as np

from amd_mmaction.reproduce.dose import STUDENT_METRICS
from amd_mmaction.reproduce.protocol import arm_names, arm_protocol, seeds_of
from amd_mmaction.reproduce.stats import t_half_width as half_width


def seeds_needed(sd: float, target: float, confidence: float = 0.95, most: int = 1000) -> int:
    """The fewest seeds (>= 2) whose expected half-width is <= ``target``."""
    for n in range(2, most + 1):
        if half_width(sd, n, confidence) <= target:
            return n
    return most


def expected_widths(run_dir: str, p: dict, target: float = 5.0) -> List[Dict]:
    """One row per (data set, claim, metric) of protocol ``p`` that the run
    in ``run_dir`` measured with at least 2 paired seeds."""
    from amd_mmaction.reproduce.report import per_seed
    from amd_mmaction.reproduce.worker import open_run
    old = open_run(run_dir, read_only=True)
    rows = []
    arms = [(name, arm_protocol(p, name)) for name in arm_names(p)] or [('', p)]
    for arm, q in arms:
        for better, worse, meaning in q['claims']:
            if not all(v in q['variants'] and v in old.p['variants'] for v in (better, worse)):
                continue
            n_new = len(set(seeds_of(q, better)) & set(seeds_of(q, worse)))
            for m, name, stage in STUDENT_METRICS:
                a = per_seed(old, better, m, stage)
                b = per_seed(old, worse, m, stage)
                common = sorted(set(a) & set(b))
                if len(common) < 2:
                    continue
                sd = float(np.std([a[s] - b[s] for s in common], ddof=1))
                rows.append(dict(arm=arm, claim=f'{better} − {worse}', meaning=meaning,
                                 metric=name, n_old=len(common), sd=sd, n_new=n_new,
                                 half_width=half_width(sd, n_new),
                                 seeds_for_target=seeds_needed(sd, target), target=target))
    return rows


def widths_markdown(rows: List[Dict]) -> str:
    if not rows:
        return 'no claim of this protocol was measured by that run: no width to predict'
    lines = ['| data set | claim | metric | sd of paired diffs (old run, n) | seeds here | '
             'expected 95% half-width | seeds for ±{:g} |'.format(rows[0]['target']),
             '|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['arm'] or '–'} | {r['claim']} | {r['metric']} | {r['sd']:.1f} "
                     f"(n={r['n_old']}) | {r['n_new']} | ±{r['half_width']:.1f} | "
                     f"{r['seeds_for_target']} |")
    return '\n'.join(lines) + ('\n(assumes the seeds spread as in the old run, whatever its '
                               'data set: an estimate for sizing)')
