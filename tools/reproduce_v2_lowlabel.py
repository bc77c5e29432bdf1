"""Low-label fine-tuning of a finished protocol v2 run: every pre-trained
student fine-tuned again on a few labeled clips per class (v2's recipe and
multi-view test), with the v2 claims as paired differences by seed.

    python tools/reproduce_v2_lowlabel.py --from work_dirs/reproduce_v2 --plan
    python tools/reproduce_v2_lowlabel.py --from work_dirs/reproduce_v2 \\
        --out work_dirs/reproduce_v2_lowlabel

The v2 run is only read. A rerun into the same --out resumes where it stopped.
"""
import argparse
import json
import os.path as osp
import sys
import time
import warnings

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
from tools.reproduce_paper import machine, parse_overrides  # noqa: E402

DEFAULT = osp.join(ROOT, 'configs', 'reproduce', 'motion_protocol_v2_lowlabel.py')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('protocol', nargs='?', default=DEFAULT, help='addendum file')
    p.add_argument('--from', dest='base', required=True, help='the protocol v2 run folder')
    p.add_argument('--out', help='output folder (default <--from>_lowlabel)')
    p.add_argument('--no-resume', action='store_true', help='start over in --out')
    p.add_argument('--report-only', action='store_true', help='only re-make the report')
    p.add_argument('--plan', action='store_true', help='print the stages and an estimate')
    p.add_argument('--force', action='store_true',
                   help='fine-tune the students that are there when the v2 run is unfinished')
    p.add_argument('--workers', type=int, help="worker processes (default: the file's)")
    p.add_argument('--quiet', action='store_true', help='no Runner logs, progress only')
    p.add_argument('--set', nargs='+', metavar='KEY=VALUE', help='override addendum keys')
    a = p.parse_args(argv)
    warnings.filterwarnings('ignore')
    import amd_mmaction  # noqa: F401  (registries, compat shims)
    from amd_mmaction.reproduce.lowlabel import LowLabelRun, load_lowlabel
    from amd_mmaction.reproduce.protocol import COST
    from amd_mmaction.reproduce.report import write_report

    if not osp.isfile(osp.join(a.base, 'protocol.json')):
        raise SystemExit(f'{a.base} is not a protocol v2 run folder (no protocol.json); '
                         'run tools/reproduce_v2.py first')
    ll = load_lowlabel(a.protocol, parse_overrides(a.set))
    if a.workers:
        ll['workers'] = a.workers
    out = a.out or osp.normpath(a.base) + '_lowlabel'
    level = 'WARNING' if a.quiet else 'INFO'
    run = LowLabelRun(ll, a.base, out, resume=not a.no_resume, read_only=a.plan,
                      log=lambda m: print(m, flush=True), log_level=level)
    ft, n = ll['finetune'], run.records['data']['data']
    clips = ll['per_class'] * n['num_classes']
    with open(n['val']) as f:
        val = sum(1 for line in f if line.strip())
    per = (ft['epochs'] * -(-clips // ft['batch_size']) * COST['finetune']
           + ft['epochs'] // ft['val_interval'] * val * COST['val_clip']
           + val * COST['test_clip'] + COST['stage'])
    units = len(run.plan()) - len({k for k in run.plan() if '/subset/' in k})
    estimate = (f'rough estimate (idle 2-core machine): {units} fine-tunings of {clips} clips, '
                f"{per * units / ll['workers'] / 60:.1f} min on {ll['workers']} worker(s)")
    if a.plan:
        print(json.dumps(dict(run.p['lowlabel'], finetune=ft), indent=1))
        print('\n'.join(run.plan()))
        print(estimate)
        return None
    info = dict(command=' '.join([osp.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
                machine=machine(1), estimate=estimate)
    with open(osp.join(out, 'command.json'), 'w') as f:
        json.dump(info, f, indent=1)
    start = time.time()
    if not a.report_only:
        print(f'[v2] low-label fine-tuning of {a.base}; output in {out}; {estimate}', flush=True)
        cmd = [sys.executable, '-m', 'amd_mmaction.reproduce.lowlabel', out, level]
        run.run(force=a.force, worker_cmd=cmd)
    label = f"fine-tune, {ll['per_class']} labels/class"
    res = write_report(run, metrics=[('finetune_top1', label, 'lowlabel')],
                       curve_kind='lowlabel', own_teacher=False)
    print('\n' + res['markdown'])
    print(f"command: {info['command']}\nmachine: {info['machine']}\n"
          f'this call: {(time.time() - start) / 60:.1f} min; wrote {out}/results.*')
    return res


if __name__ == '__main__':
    main()
