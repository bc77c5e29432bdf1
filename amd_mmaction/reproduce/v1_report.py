"""Results of the reproduction protocol: per-variant mean and std over
seeds, the AMD-serial minus VideoMAE margin (paired by seed), the paper's
order claims checked, wall time per stage; Markdown, CSV, JSON and a PNG."""
import csv
import json
import math
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional

from amd_mmaction.reproduce.v1_protocol import TRANSFERS

METRIC_NAMES = {'finetune': 'fine-tune', 'linear_probe': 'linear probe'}
BASELINE, HEADLINE = 'videomae', 'amd_serial'
# The paper's claims as (left, relation, right, what it says); checked when
# both variants are in the protocol. '>' for the headline gain, '>=' for the
# ablation orders of Table 1.
CLAIMS = [
    ('amd_serial', '>', 'videomae', 'AMD beats VideoMAE at equal epochs'),
    ('amd_serial', '>=', 'amd_parallel', 'serial D+G >= parallel D+G'),
    ('amd_parallel', '>=', 'amd_direct', 'parallel D+G >= direct only'),
    ('amd_parallel', '>=', 'amd_generation', 'parallel D+G >= generation only'),
    ('amd_serial_tr50', '>=', 'amd_serial', 'teacher ratio 0.5 >= 0.75'),
    ('amd_direct', '>=', 'dmae', 'asymmetric >= symmetric masks (direct)'),
]


def stats(values: List[float]) -> Dict:
    """mean, sample std (n-1; None below 2 values), n, values."""
    n = len(values)
    mean = sum(values) / n if n else None
    std = (math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None)
    return dict(mean=mean, std=std, n=n, values=list(values))


def summarize(records: List[dict], protocol: dict) -> dict:
    """Per variant and transfer: top-1 (%) stats over seeds; paired margins
    against VideoMAE; claims; seconds per stage kind."""
    top1 = defaultdict(dict)      # (variant, kind) -> {seed: top1 %}
    secs = defaultdict(list)      # (variant or kind, kind) -> [seconds]
    for r in records:
        if r['kind'] in TRANSFERS:
            top1[(r['variant'], r['kind'])][r['seed']] = 100.0 * r['top1']
        secs[(r['variant'], r['kind'])].append(r['seconds'])
    variants = {}
    for name, v in protocol['variants'].items():
        variants[name] = dict(label=v.get('label', name), **{
            kind: stats([top1[(name, kind)][s] for s in sorted(top1[(name, kind)])])
            for kind in TRANSFERS})
        variants[name]['seconds'] = {
            kind: stats(secs[(name, kind)])['mean'] for kind in ('pretrain',) + TRANSFERS}

    def paired(a, b, kind):
        ta, tb = top1[(a, kind)], top1[(b, kind)]
        return stats([ta[s] - tb[s] for s in sorted(set(ta) & set(tb))])

    margins = {}
    if BASELINE in protocol['variants']:
        for name in protocol['variants']:
            if name != BASELINE:
                margins[name] = {k: paired(name, BASELINE, k) for k in TRANSFERS}
    claims = []
    for a, rel, b, text in CLAIMS:
        if a in protocol['variants'] and b in protocol['variants']:
            for kind in TRANSFERS:
                d = paired(a, b, kind)
                if d['n']:
                    ok = (lambda x: x > 0) if rel == '>' else (lambda x: x >= 0)
                    claims.append(dict(claim=text, left=a, relation=rel, right=b,
                                       metric=kind, diff=d, holds=ok(d['mean']),
                                       seeds_holding=sum(ok(x) for x in d['values'])))
    order = ('data', 'teacher', 'teacher_probe', 'pretrain') + TRANSFERS
    stage_seconds = {k: sum(r['seconds'] for r in records if r['kind'] == k) for k in order
                     if any(r['kind'] == k for r in records)}
    stage_seconds['total'] = sum(stage_seconds.values())
    # Diagnostics: how good the teacher's own features are, and where each
    # pre-training ended (final logged losses, mean over seeds).
    losses = defaultdict(lambda: defaultdict(list))
    for r in records:
        for k, v in (r.get('losses') or {}).items():
            losses[r['variant'] or 'teacher'][k].append(v)
    losses = {name: {k: sum(v) / len(v) for k, v in ls.items()} for name, ls in losses.items()}
    teacher_probe = stats([100.0 * r['top1'] for r in records if r['kind'] == 'teacher_probe'])
    return dict(seeds=sorted({r['seed'] for r in records}), variants=variants,
                margins=margins, claims=claims, stage_seconds=stage_seconds,
                teacher_probe=teacher_probe, final_losses=losses)


def _pm(s: Dict, digits: int = 1) -> str:
    if not s or s['mean'] is None:
        return 'n/a'
    std = 'n/a' if s['std'] is None else f"{s['std']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {std}"


def _secs(x: Optional[float]) -> str:
    return 'n/a' if x is None else f'{x:.0f}'


def markdown(summary: dict) -> str:
    """The results as Markdown: variant table, headline margin, claims,
    wall time per stage kind."""
    n = len(summary['seeds'])
    out = [f'Top-1 (%) on the held-out clips, mean ± std over {n} seed(s) '
           f'{summary["seeds"]}; chance is 16.7%.', '',
           '| variant | fine-tune top-1 | linear-probe top-1 | Δ fine-tune vs VideoMAE '
           '| Δ linear vs VideoMAE | pre-train s | fine-tune s | linear-probe s |',
           '|---|---|---|---|---|---|---|---|']
    for name, v in summary['variants'].items():
        m = summary['margins'].get(name, {})
        out.append(f"| {v['label']} (`{name}`) | {_pm(v['finetune'])} | "
                   f"{_pm(v['linear_probe'])} | {_pm(m.get('finetune'))} | "
                   f"{_pm(m.get('linear_probe'))} | {_secs(v['seconds']['pretrain'])} | "
                   f"{_secs(v['seconds']['finetune'])} | {_secs(v['seconds']['linear_probe'])} |")
    head = summary['margins'].get(HEADLINE)
    if head:
        out += ['', f"**AMD serial − VideoMAE** (paired by seed): fine-tune "
                f"{_pm(head['finetune'])} points (per seed "
                f"{[round(x, 1) for x in head['finetune']['values']]}), linear probe "
                f"{_pm(head['linear_probe'])} points (per seed "
                f"{[round(x, 1) for x in head['linear_probe']['values']]}). "
                'Paper: +6.0 (SSV2 fine-tune, ViT-B, 200 epochs).']
    if summary['claims']:
        out += ['', '| paper claim | metric | difference (points, mean ± std) '
                '| holds on the mean | seeds where it holds |', '|---|---|---|---|---|']
        for c in summary['claims']:
            out.append(f"| {c['claim']} (`{c['left']}` {c['relation']} `{c['right']}`) | "
                       f"{METRIC_NAMES[c['metric']]} | {_pm(c['diff'])} | "
                       f"{'yes' if c['holds'] else '**no**'} | "
                       f"{c['seeds_holding']}/{c['diff']['n']} |")
    out += diagnostics(summary)
    st = summary['stage_seconds']
    out += ['', '| stage | wall time, all seeds (s) | per seed (s) |', '|---|---|---|']
    out += [f'| {k} | {v:.0f} | {v / max(n, 1):.0f} |' for k, v in st.items()]
    return '\n'.join(out) + '\n'


def diagnostics(summary: dict) -> List[str]:
    out = []
    if summary.get('teacher_probe', {}).get('n'):
        out += ['', f"Teacher (plain VideoMAE, the larger model) linear-probe top-1: "
                f"{_pm(summary['teacher_probe'])} %."]
    losses = summary.get('final_losses') or {}
    if losses:
        keys = sorted({k for ls in losses.values() for k in ls})
        out += ['', 'Final pre-training losses (last logged iteration, mean over seeds):', '',
                '| model | ' + ' | '.join(keys) + ' |', '|---|' + '---|' * len(keys)]
        for name, ls in losses.items():
            label = summary['variants'].get(name, {}).get('label', name)
            out.append(f'| {label} | ' + ' | '.join(
                f'{ls[k]:.4f}' if k in ls else '' for k in keys) + ' |')
    return out


def write_csv(summary: dict, records: List[dict], out_dir: str) -> Dict[str, str]:
    """``results.csv`` (one row per variant) and ``records.csv`` (one row per stage)."""
    res = osp.join(out_dir, 'results.csv')
    with open(res, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['variant', 'label', 'n_seeds', 'finetune_top1_mean', 'finetune_top1_std',
                    'linear_probe_top1_mean', 'linear_probe_top1_std',
                    'finetune_margin_vs_videomae_mean', 'finetune_margin_vs_videomae_std',
                    'linear_margin_vs_videomae_mean', 'linear_margin_vs_videomae_std',
                    'pretrain_seconds', 'finetune_seconds', 'linear_probe_seconds'])
        for name, v in summary['variants'].items():
            m = summary['margins'].get(name, {})
            g = lambda s, k: '' if not s or s.get(k) is None else round(s[k], 3)  # noqa: E731
            w.writerow([name, v['label'], v['finetune']['n'],
                        g(v['finetune'], 'mean'), g(v['finetune'], 'std'),
                        g(v['linear_probe'], 'mean'), g(v['linear_probe'], 'std'),
                        g(m.get('finetune'), 'mean'), g(m.get('finetune'), 'std'),
                        g(m.get('linear_probe'), 'mean'), g(m.get('linear_probe'), 'std'),
                        *[_secs(v['seconds'][k]) for k in ('pretrain',) + TRANSFERS]])
    raw = osp.join(out_dir, 'records.csv')
    with open(raw, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['seed', 'kind', 'variant', 'top1', 'seconds'])
        for r in records:
            w.writerow([r['seed'], r['kind'], r['variant'] or '',
                        '' if 'top1' not in r else round(r['top1'], 4), round(r['seconds'], 1)])
    return dict(results_csv=res, records_csv=raw)


def plot(summary: dict, path: str) -> str:
    """Bars: mean top-1 per variant, fine-tune and linear probe side by
    side, std error bars, every seed's value as a dot."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(summary['variants'])
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 3, 4.2))
    width = 0.38
    for j, kind in enumerate(TRANSFERS):
        xs = [i + (j - 0.5) * width for i in range(len(names))]
        st = [summary['variants'][n][kind] for n in names]
        means = [s['mean'] if s['mean'] is not None else 0 for s in st]
        errs = [s['std'] or 0 for s in st]
        ax.bar(xs, means, width, yerr=errs, capsize=3, label=METRIC_NAMES[kind],
               color=('tab:blue', 'tab:orange')[j], alpha=0.8)
        for x, s in zip(xs, st):
            ax.scatter([x] * len(s['values']), s['values'], s=10, color='k', zorder=3)
    ax.axhline(100 / 6, color='gray', ls='--', lw=1, label='chance')
    tp = summary.get('teacher_probe') or {}
    if tp.get('n'):
        ax.axhline(tp['mean'], color='tab:green', ls=':', lw=1.2,
                   label='teacher, linear probe')
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([summary['variants'][n]['label'] for n in names], rotation=20,
                       ha='right', fontsize=8)
    ax.set_ylabel('top-1 (%)')
    ax.set_title(f'Micro-scale AMD reproduction, {len(summary["seeds"])} seed(s): '
                 'mean ± std, dots = seeds', fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(records: List[dict], protocol: dict, out_dir: str,
                 extra: Optional[dict] = None) -> Dict[str, str]:
    """Every output into ``out_dir``: results.md, results.json,
    results.csv, records.csv, results.png. Returns their paths."""
    summary = summarize(records, protocol)
    paths = dict(markdown=osp.join(out_dir, 'results.md'),
                 json=osp.join(out_dir, 'results.json'),
                 png=osp.join(out_dir, 'results.png'))
    text = markdown(summary)
    if extra and extra.get('command'):
        text += f"\nCommand: `{extra['command']}`; machine: {extra.get('machine', 'n/a')}.\n"
    with open(paths['markdown'], 'w') as f:
        f.write(text)
    with open(paths['json'], 'w') as f:
        json.dump(dict(summary=summary, records=records, protocol=protocol,
                       **(extra or {})), f, indent=1)
    paths.update(write_csv(summary, records, out_dir))
    plot(summary, paths['png'])
    return paths
