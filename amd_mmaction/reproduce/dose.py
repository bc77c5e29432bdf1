"""The teacher dose-response of a protocol v3 run (issue 21): how a
student distilled from each stage of one teacher's training compares with
that stage's quality.

- **Teacher stages**: the gate figures of every stage (``untrained`` = the
  random teacher, the stages between, the end = the trained teacher): the
  masked-pixel ratio, linear probe and k-NN top-1, and the margin over the
  untrained network (paired bootstrap over the validation clips,
  :func:`.stats.untrained_margin`). A stage *counts as trained* when both
  margins' intervals lie above zero.
- **Students**: the protocol's ``dose`` variants, one per stage, same seeds;
  per stage the mean and t interval over seeds of each student metric.
- **Slope** of each student metric on the teacher metric named by
  ``dose.teacher_metric`` (the teacher's linear probe by default), seeds as
  replicates (:func:`.stats.slope_interval`): "better teacher, better
  student" holds when its interval lies above zero.

Reads records only, like :mod:`.report`.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

from amd_mmaction.reproduce.protocol import dose_variant, stage_name, teacher_stages
from amd_mmaction.reproduce.stats import paired_t_interval, slope_interval

# (record field, name, stage kind that records it)
STUDENT_METRICS = (('knn_top1', 'k-NN', 'features'), ('linear_top1', 'linear probe', 'features'))
TEACHER_METRICS = dict(probe_top1='linear probe', knn_top1='k-NN')


def counts_as_trained(g: dict) -> Optional[bool]:
    """Both margins over the untrained network above zero (None: not measured)."""
    vs = g.get('vs_untrained')
    if not vs:
        return None
    return all(vs[m]['passed'] for m in ('probe', 'knn'))


def summarize_dose(run, per_seed, metrics=STUDENT_METRICS,
                   slope_stages: Optional[Sequence[str]] = None) -> Optional[dict]:
    """The dose-response of ``run`` (None without teacher stages).
    ``per_seed(run, variant, metric, kind)``: :func:`.report.per_seed`;
    ``metrics``: (field, name, stage kind) of the student metrics (a
    low-label run's: its fine-tuning); ``slope_stages``: fit the slopes over
    these stages only (names as in the table: ``untrained``, ``epoch_10``,
    ...); default every stage, as the protocol fixed it. A subset chosen
    after seeing the results is an exploratory reading, not the protocol's."""
    p = run.p
    epochs = teacher_stages(p)
    if not epochs or not p.get('dose'):
        return None
    x_key = p['dose'].get('teacher_metric', 'probe_top1')
    gates = run.stage_gates()
    stages = []
    for e in epochs:
        name = stage_name(e)
        g = gates.get(name)
        v = dose_variant(p, e)
        row = dict(stage=name, epoch=e, variant=v, gate=None, students={})
        if g is not None:
            row['gate'] = dict(recon_ratio=g['recon_ratio'], probe_top1=g['probe_top1'],
                               knn_top1=g['knn_top1'], vs_untrained=g.get('vs_untrained'),
                               trained=counts_as_trained(g) if e else None)
        for m, _, kind in metrics:
            vals = per_seed(run, v, m, kind)
            xs = list(vals.values())
            row['students'][m] = dict(per_seed=vals, n=len(xs),
                                      mean=float(np.mean(xs)) if xs else None,
                                      t=paired_t_interval(xs) if len(xs) > 1 else None)
        stages.append(row)
    slopes = {}
    names = [r['stage'] for r in stages]
    unknown = sorted(set(slope_stages or ()) - set(names))
    if unknown:
        raise ValueError(f'slope stages {unknown} are not stages of this run; its stages: '
                         f'{names}')
    done = [r for r in stages if r['gate'] is not None
            and (slope_stages is None or r['stage'] in slope_stages)]
    for m, _, _ in metrics:
        common = None
        for r in done:
            seeds = set(r['students'][m]['per_seed'])
            common = seeds if common is None else common & seeds
        common = sorted(common or [])
        if len(done) < 2 or len(common) < 2:
            slopes[m] = dict(reason=f'{len(done)} stage(s) with a gate, {len(common)} seed(s) '
                                    'at every one of them: no slope yet')
            continue
        try:
            res = slope_interval({r['stage']: r['gate'][x_key] for r in done},
                                 {r['stage']: {s: r['students'][m]['per_seed'][s] for s in common}
                                  for r in done})
        except ValueError as err:
            slopes[m] = dict(reason=str(err))
            continue
        res['per_seed'] = {int(k): v for k, v in res['per_seed'].items()}
        slopes[m] = res
    return dict(stages=stages, slopes=slopes, teacher_metric=x_key,
                metrics=[[m, name] for m, name, _ in metrics],
                teacher_metric_name=TEACHER_METRICS.get(x_key, x_key),
                slope_stages=[r['stage'] for r in done],
                variant_manner=p['dose'].get('manner'))


def _iv(s: dict, digits: int = 1) -> str:
    if s['mean'] is None:
        return '–'
    f = f'{{:.{digits}f}}'
    txt = f.format(s['mean'])
    if s['t'] is not None:
        txt += f" [{f.format(s['t'][0])}, {f.format(s['t'][1])}]"
    return txt + f" (n={s['n']})"


def _margin(res: Optional[dict]) -> str:
    if not res:
        return '–'
    return (f"{res['margin']:+.1f} [{res['interval'][0]:+.1f}, {res['interval'][1]:+.1f}]")


def dose_markdown(d: dict) -> List[str]:
    """The stage gate table, the dose-response table and the slopes."""
    lines = ['### Teacher stages (validation clips): gate figures and the margin over the '
             'untrained network', '',
             '| stage | masked-pixel ratio | linear probe | k-NN | probe − untrained | '
             'k-NN − untrained | counts as trained |', '|---|---|---|---|---|---|---|']
    for r in d['stages']:
        g = r['gate']
        if g is None:
            lines.append(f"| {r['stage']} | not yet | | | | | |")
            continue
        vs = g['vs_untrained'] or {}
        trained = '–' if g['trained'] is None else ('yes' if g['trained'] else '**no**')
        lines.append(f"| {r['stage']} | {g['recon_ratio']:.3f} | {g['probe_top1']:.1f}% | "
                     f"{g['knn_top1']:.1f}% | {_margin(vs.get('probe'))} | "
                     f"{_margin(vs.get('knn'))} | {trained} |")
    lines += ['', 'Margins: points of top-1, paired percentile bootstrap over the validation '
                  'clips (10,000 resamples); a stage counts as trained when both intervals lie '
                  'above zero.', '',
              f"### Dose-response: AMD {d['variant_manner']} students distilled from each "
              'stage, top-1 (%), mean [95% t interval] over seeds', '',
              f"| stage | teacher {d['teacher_metric_name']} | variant | " +
              ' | '.join(f'student {n}' for _, n in d['metrics']) + ' |',
              '|---|---|---|' + '---|' * len(d['metrics'])]
    for r in d['stages']:
        x = '–' if r['gate'] is None else f"{r['gate'][d['teacher_metric']]:.1f}%"
        lines.append(f"| {r['stage']} | {x} | {r['variant']} | " +
                     ' | '.join(_iv(r['students'][m]) for m, _ in d['metrics']) + ' |')
    return lines + [''] + slope_lines(d) + ['']


def slope_lines(d: dict) -> List[str]:
    """The slopes of a dose summary, one line per student metric."""
    lines = [f"**Slope** of the student metric on the teacher's "
             f"{d['teacher_metric_name']} (points per point; per-seed OLS over the stages, "
             't interval over seeds; bootstrap of the per-seed slopes as a cross-check): ']
    for m, name in d['metrics']:
        s = d['slopes'][m]
        if 'reason' in s:
            lines.append(f'- student {name}: {s["reason"]}')
            continue
        lines.append(f"- student {name}: {s['slope']:+.3f} [{s['t'][0]:+.3f}, {s['t'][1]:+.3f}] "
                     f"(t, n={s['n_seeds']} seeds x {s['n_stages']} stages; bootstrap "
                     f"[{s['bootstrap'][0]:+.3f}, {s['bootstrap'][1]:+.3f}])"
                     + (' **holds: better teacher, better student**' if s['holds'] else
                        (' (interval below zero)' if s['t'][1] < 0 else
                         ' (interval includes zero)')))
    return lines


def plot_dose(d: dict, path: str, title: str = '', videomae: Optional[Dict] = None) -> str:
    """Student metric against teacher metric: per-seed dots, stage means
    with 95% t intervals, the fitted line; ``videomae``: {metric: summary
    row} drawn as a band (the no-teacher baseline)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ms = d['metrics']
    fig, axes = plt.subplots(1, len(ms), figsize=(5.5 * len(ms), 4.3), squeeze=False)
    for ax, (m, name) in zip(axes[0], ms):
        xs = []
        for r in d['stages']:
            if r['gate'] is None or r['students'][m]['mean'] is None:
                continue
            x = r['gate'][d['teacher_metric']]
            s = r['students'][m]
            xs.append(x)
            ax.scatter([x] * s['n'], list(s['per_seed'].values()), s=10, color='0.6', zorder=3)
            err = None if s['t'] is None else [[s['mean'] - s['t'][0]], [s['t'][1] - s['mean']]]
            ax.errorbar([x], [s['mean']], yerr=err, fmt='o', color='C0', capsize=4, zorder=4)
            ax.annotate(r['stage'], (x, s['mean']), textcoords='offset points', xytext=(4, 4),
                        fontsize=7)
        sl = d['slopes'][m]
        if 'slope' in sl and xs:
            grid = np.linspace(min(xs), max(xs), 2)
            ax.plot(grid, sl['intercept'] + sl['slope'] * grid, color='C0', lw=1,
                    label=f"slope {sl['slope']:+.2f} [{sl['t'][0]:+.2f}, {sl['t'][1]:+.2f}]")
        if videomae and videomae.get(m) and videomae[m]['mean'] is not None:
            v = videomae[m]
            ax.axhline(v['mean'], color='C1', lw=1, label='VideoMAE (no teacher)')
            if v['t']:
                ax.axhspan(v['t'][0], v['t'][1], color='C1', alpha=0.15)
        ax.set_xlabel(f"teacher {d['teacher_metric_name']} top-1 (%)")
        ax.set_ylabel(f'student {name} top-1 (%)')
        ax.set_title(f'{title} student {name}'.strip(), fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
