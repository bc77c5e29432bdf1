"""Tables, intervals and plots of a reproduction run (the protocol, or its
low-label addendum), from its records: results.md, results.json,
results.csv (one row per student), results.png (k-NN / linear probe /
fine-tune per variant with 95% intervals, one dot per seed; fine-tuning
curves; the teacher's loss curve).

The report reads the records alone (not the checkpoints they name), so a
copied run folder, such as the ones in docs/results/, gives the same report.
"""
import csv
import json
import os.path as osp
from typing import Dict, List

import numpy as np

from amd_mmaction.reproduce.dose import counts_as_trained, dose_markdown, plot_dose, summarize_dose
from amd_mmaction.reproduce.protocol import seeds_of, stage_key
from amd_mmaction.reproduce.stats import format_diff, paired_stats

# (record field, column name, stage kind that records it)
METRICS = (('knn_top1', 'k-NN', 'features'), ('linear_top1', 'linear probe', 'features'),
           ('finetune_top1', 'fine-tune', 'finetune'))


def per_seed(run, variant: str, metric: str, kind: str) -> Dict[int, float]:
    out = {}
    for seed in seeds_of(run.p, variant):
        r = run.valid(stage_key(dict(kind=kind, variant=variant, seed=seed)), outputs=False)
        if r is not None and metric in r:
            out[seed] = float(r[metric])
    return out


def _interval(values: List[float]):
    from amd_mmaction.reproduce.stats import paired_t_interval
    if len(values) < 2:
        return None
    return paired_t_interval(values)


def lowlabel_options(p: dict) -> dict:
    """:func:`summarize`'s options for a low-label run (``p['lowlabel']``):
    its fine-tuning column and curves; its wall time is its own."""
    label = f"fine-tune, {p['lowlabel']['per_class']} labels/class"
    return dict(metrics=[('finetune_top1', label, 'lowlabel')], curve_kind='lowlabel',
                own_teacher=False)


def report_metrics(p: dict) -> list:
    """(field, column, stage kind) of the student metrics the report of a run
    of protocol ``p`` shows: a low-label run's fine-tuning; otherwise k-NN,
    linear probe, and fine-tuning where the protocol has it."""
    if 'lowlabel' in p:
        return lowlabel_options(p)['metrics']
    return [m for m in METRICS if m[0] != 'finetune_top1' or p['evaluation'].get('finetune')]


def summarize(run, metrics=None, curve_kind: str = 'finetune', own_teacher: bool = True) -> dict:
    """``metrics``: (field, column, stage kind) triples, default METRICS
    (fine-tuning only where the protocol has it); ``curve_kind``: the stage
    whose validation curves are plotted; ``own_teacher``: False for a run
    built on another run's students (its wall time is its own, not the
    teacher's). A low-label run's defaults: :func:`lowlabel_options`."""
    p = run.p
    metrics = metrics or report_metrics(p)
    kinds = {m: k for m, _, k in metrics}
    variants = {}
    for v in p['variants']:
        row = dict(label=p['variants'][v]['label'], seeds=seeds_of(p, v))
        for m, _, _ in metrics:
            vals = per_seed(run, v, m, kinds[m])
            xs = list(vals.values())
            row[m] = dict(per_seed=vals, n=len(xs), mean=float(np.mean(xs)) if xs else None,
                          sd=float(np.std(xs, ddof=1)) if len(xs) > 1 else None,
                          t=_interval(xs))
        variants[v] = row
    claims = []
    for better, worse, meaning in p['claims']:
        if better not in p['variants'] or worse not in p['variants']:
            continue
        c = dict(better=better, worse=worse, meaning=meaning, metrics={})
        for m, _, _ in metrics:
            a, b = per_seed(run, better, m, kinds[m]), per_seed(run, worse, m, kinds[m])
            common = sorted(set(a) & set(b))
            if common:
                c['metrics'][m] = paired_stats({s: a[s] for s in common},
                                               {s: b[s] for s in common})
        claims.append(c)
    gate = run.records.get('gate', {}).get('gate')
    teacher = run.records.get('teacher', {})
    sessions = run.store.sessions()
    curves = {}
    for v in p['variants']:
        for seed in seeds_of(p, v):
            r = run.valid(stage_key(dict(kind=curve_kind, variant=v, seed=seed)), outputs=False)
            if r is not None:
                curves.setdefault(v, {})[seed] = dict(val=r['val_curve'], loss=r['loss_curve'])
    extra_gates = {}
    for name in p.get('teachers') or {}:
        r = run.records.get(stage_key(dict(kind='gate', name=name)))
        if r:
            extra_gates[name] = r['gate']
    dose = summarize_dose(run, per_seed, metrics) if hasattr(run, 'stage_gates') else None
    return dict(variants=variants, claims=claims, gate=gate, metrics=[m for m, _, _ in metrics],
                extra_gates=extra_gates, dose=dose,
                names={m: name for m, name, _ in metrics}, own_teacher=own_teacher,
                teacher=dict(seconds=teacher.get('seconds'), curve=teacher.get('curve'),
                             losses=teacher.get('losses')),
                wall_seconds=sum(s['seconds'] for s in sessions), sessions=sessions,
                busy_seconds=run.store.busy_seconds(),
                finetune_curves=curves, complete=run.all_done(outputs=False))


def _mean_sd(s):
    if s['mean'] is None:
        return '–'
    txt = f"{s['mean']:.1f}"
    if s['t'] is not None:
        txt += f" [{s['t'][0]:.1f}, {s['t'][1]:.1f}]"
    return txt + f" (n={s['n']})"


def markdown(summary: dict) -> str:
    names = summary['names']
    lines = []
    g = summary['gate']
    if g:
        lines += ['### Teacher gate (validation clips, before any student)', '',
                  '| teacher | masked-pixel loss | trivial predictor | ratio | linear probe | '
                  'k-NN | gate |', '|---|---|---|---|---|---|---|']
        rows = [(g['teacher'], 'trained'), (g['teacher_random'], 'random init')]
        for name, eg in summary.get('extra_gates', {}).items():
            rows += [(eg['teacher'], f'{name}, trained'), (eg['untrained'], f'{name}, untrained')]
        for x, label in rows:
            lines.append(f"| {label} | {x['recon']:.5f} | {x['trivial']:.5f} | "
                         f"{x['recon_ratio']:.3f} (≤ {x['margin']}) | {x['probe_top1']:.1f}% "
                         f"(≥ {x['factor'] * x['chance']:.1f}%) | {x['knn_top1']:.1f}% | "
                         f"{'passed' if x['passed'] else 'failed'} |")
        lines += ['', f"Chance {g['teacher']['chance']:.1f}%."]
        trained = [(label, x) for label, x in
                   [('main', g['teacher'])] + [(n, eg['teacher']) for n, eg in
                                                  summary.get('extra_gates', {}).items()]
                   if x.get('vs_untrained')]
        for label, x in trained:
            vs = x['vs_untrained']
            lines.append(f"Teacher {label} against the untrained network of its shape: probe "
                         f"{vs['probe']['margin']:+.1f} [{vs['probe']['interval'][0]:+.1f}, "
                         f"{vs['probe']['interval'][1]:+.1f}], k-NN {vs['knn']['margin']:+.1f} "
                         f"[{vs['knn']['interval'][0]:+.1f}, {vs['knn']['interval'][1]:+.1f}] "
                         "(points, paired bootstrap over clips): "
                         + ('counts as trained.' if counts_as_trained(x) else
                            '**does not count as trained**: claims about its knowledge do not '
                            'apply.'))
        if g['teacher'].get('reasons') and not g['teacher']['passed']:
            lines.append('Gate failed: ' + '; '.join(g['teacher']['reasons']) + '.')
        lines.append('')
    if summary.get('dose'):
        lines += dose_markdown(summary['dose'])
    lines += ['### Students: top-1 (%), mean [95% t interval] over seeds', '',
              '| variant | ' + ' | '.join(names[m] for m in summary['metrics']) + ' |',
              '|---|' + '---|' * len(summary['metrics'])]
    for v, row in summary['variants'].items():
        lines.append(f"| {row['label']} | " +
                     ' | '.join(_mean_sd(row[m]) for m in summary['metrics']) + ' |')
    lines += ['', '### Claims: paired differences by seed, mean [95% paired-t interval]; '
                  'holds when the interval excludes zero', '',
              '| claim | ' + ' | '.join(names[m] for m in summary['metrics']) + ' |',
              '|---|' + '---|' * len(summary['metrics'])]
    for c in summary['claims']:
        cells = []
        for m in summary['metrics']:
            s = c['metrics'].get(m)
            if not s:
                cells.append('–')
                continue
            mark = ' **holds**' if s['holds'] else ''
            cells.append(format_diff(s) + mark)
        lines.append(f"| {c['better']} − {c['worse']}: {c['meaning']} | " + ' | '.join(cells) + ' |')
    lines += ['', 'Bootstrap cross-check (percentile, 10000 resamples): ' + '; '.join(
        f"{c['better']} − {c['worse']} {names[m]} {format_diff(s, interval='bootstrap')}"
        for c in summary['claims'] for m, s in c['metrics'].items() if s['bootstrap']) or '–', '']
    t = summary['teacher']
    took = (f"{summary['busy_seconds'] / 60:.1f} min of wall time while its stages ran (the "
            f"union of their start-finish times, over every session); "
            f"{len(summary['sessions'])} session(s) ended normally, "
            f"{summary['wall_seconds'] / 60:.1f} min"
            f"{'' if summary['complete'] else '; INCOMPLETE'}.")
    if not summary['own_teacher']:
        lines.append('This run: ' + took)
    elif t.get('seconds'):
        lines.append(f"Teacher: {t['seconds'] / 60:.1f} min. Whole run: " + took)
    return '\n'.join(lines) + '\n'


def write_csv(summary: dict, path: str):
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['variant', 'seed'] + summary['metrics'])
        for v, row in summary['variants'].items():
            seeds = sorted({s for m in summary['metrics'] for s in row[m]['per_seed']})
            for s in seeds:
                w.writerow([v, s] + [row[m]['per_seed'].get(s, '') for m in summary['metrics']])


def plot(summary: dict, path: str):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ms = summary['metrics']
    fig, axes = plt.subplots(1, len(ms) + 1, figsize=(5 * (len(ms) + 1), 4.5))
    names = summary['names']
    labels = list(summary['variants'])
    chance = summary['gate']['teacher']['chance'] if summary['gate'] else None
    for ax, m in zip(axes, ms):
        for i, v in enumerate(labels):
            s = summary['variants'][v][m]
            if s['mean'] is None:
                continue
            ax.scatter([i] * s['n'], list(s['per_seed'].values()), s=12, color='0.5', zorder=3)
            err = None
            if s['t']:
                err = [[s['mean'] - s['t'][0]], [s['t'][1] - s['mean']]]
            ax.errorbar([i], [s['mean']], yerr=err, fmt='o', color='C0', capsize=4, zorder=4)
        if chance:
            ax.axhline(chance, ls=':', color='k', lw=1, label='chance')
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=45, ha='right', fontsize=8)
        ax.set_title(f'{names[m]} top-1 (%), 95% t interval')
    ax = axes[-1]
    for i, (v, seeds) in enumerate(summary['finetune_curves'].items()):
        for j, (_, c) in enumerate(seeds.items()):
            if c['val']:
                e, a = zip(*c['val'])
                ax.plot(e, a, color=f'C{i}', alpha=0.6, label=v if j == 0 else None)
    if summary['finetune_curves']:
        ax.set_title('fine-tuning: validation top-1 by epoch')
        ax.set_xlabel('epoch')
        ax.legend(fontsize=7)
    elif summary['teacher'].get('curve'):
        e, l_ = zip(*summary['teacher']['curve'])
        ax.plot(e, l_)
        ax.set_title('teacher: masked-pixel loss by epoch')
        ax.set_xlabel('epoch')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(run, **summarize_kw) -> dict:
    """results.md / .json / .csv / .png of ``run`` into its folder;
    ``summarize_kw``: :func:`summarize`'s options (a low-label run's by
    default)."""
    if 'lowlabel' in run.p:
        summarize_kw = dict(lowlabel_options(run.p), **summarize_kw)
    s = summarize(run, **summarize_kw)
    md = markdown(s)
    out = run.out
    with open(osp.join(out, 'results.md'), 'w') as f:
        f.write(md)
    with open(osp.join(out, 'results.json'), 'w') as f:
        json.dump(dict(summary=s, protocol=run.p), f, indent=1)
    write_csv(s, osp.join(out, 'results.csv'))
    plot(s, osp.join(out, 'results.png'))
    if s.get('dose'):
        base = next((v for v, x in run.p['variants'].items() if x['manner'] == 'none'), None)
        plot_dose(s['dose'], osp.join(out, 'dose.png'), osp.basename(osp.normpath(out)),
                  s['variants'].get(base))
    return dict(summary=s, markdown=md)
