"""Protocol v2 of the micro-scale reproduction: does AMD distil, above the noise?

One teacher (plain VideoMAE on an unlabeled pool, trained far longer than any
student) must pass a gate before any student is trained; then every student
(VideoMAE, AMD serial, a random-teacher control, the Table 1 ablations) is
distilled from that same teacher over several seeds and evaluated by k-NN and
a linear probe on frozen features and by fine-tuning, all with the multi-view
test; claims are paired differences by seed with 95% intervals.

    python tools/reproduce_v2.py --plan      # stages and a time estimate
    python tools/reproduce_v2.py --quick     # teacher + 3 headline variants, 3 seeds, < 15 min
    python tools/reproduce_v2.py             # the full protocol
    python tools/reproduce_v2.py --set data.source=lists data.train=train.txt \\
        data.val=val.txt data.root=videos/ data.num_classes=10   # your own data

A rerun into the same --out resumes where it stopped.
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

DEFAULT = osp.join(ROOT, 'configs', 'reproduce', 'motion_protocol_v2.py')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('protocol', nargs='?', default=DEFAULT, help='protocol file')
    p.add_argument('--quick', action='store_true', help="the protocol's quick section")
    p.add_argument('--out', help='output folder (default work_dirs/reproduce_v2[_quick])')
    p.add_argument('--no-resume', action='store_true', help='start over in --out')
    p.add_argument('--report-only', action='store_true', help='only re-make the report')
    p.add_argument('--plan', action='store_true', help='print the stages and an estimate')
    p.add_argument('--force', action='store_true',
                   help='train the students even if the teacher fails its gate')
    p.add_argument('--teacher-only', action='store_true',
                   help='stop after the teacher and its gate (to size a teacher)')
    p.add_argument('--workers', type=int, help='worker processes for the students '
                                               "(default: the protocol's)")
    p.add_argument('--quiet', action='store_true', help="no Runner logs, progress only")
    p.add_argument('--set', nargs='+', metavar='KEY=VALUE',
                   help='override protocol keys; a different protocol needs a fresh --out')
    a = p.parse_args(argv)
    warnings.filterwarnings('ignore')
    import amd_mmaction  # noqa: F401  (registries, compat shims)
    from amd_mmaction.reproduce.protocol import (estimate_seconds, load_protocol,
                                                      plan_stages, stage_key)
    from amd_mmaction.reproduce.report import write_report
    from amd_mmaction.reproduce.runner import GateFailed, V2Run

    protocol = load_protocol(a.protocol, quick=a.quick, overrides=parse_overrides(a.set))
    if a.workers:
        protocol['workers'] = a.workers
    est = estimate_seconds(protocol)
    estimate = (f"rough estimate (idle 2-core machine): teacher {est['teacher'] / 60:.1f} min, "
                f"gate {est['gate'] / 60:.1f} min, {est['units']} students "
                f"{est['students'] / 60:.1f} min on {protocol['workers']} worker(s), "
                f"total {est['total'] / 60:.1f} min")
    if a.plan:
        print(json.dumps(protocol, indent=1))
        print('\n'.join(stage_key(s) for s in plan_stages(protocol)))
        print(estimate)
        return None
    out = a.out or osp.join('work_dirs', 'reproduce_v2_quick' if a.quick else 'reproduce_v2')
    level = 'WARNING' if a.quiet else 'INFO'
    run = V2Run(protocol, out, resume=not a.no_resume, log=lambda m: print(m, flush=True),
                log_level=level)
    info = dict(command=' '.join([osp.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
                machine=machine(1), estimate=estimate)
    with open(osp.join(out, 'command.json'), 'w') as f:
        json.dump(info, f, indent=1)
    start = time.time()
    status = 0
    if not a.report_only:
        print(f'[v2] {len(plan_stages(protocol))} stages; output in {out}; {estimate}', flush=True)
        worker_cmd = [sys.executable, '-m', 'amd_mmaction.reproduce.runner', out, level]
        try:
            run.run(force=a.force, worker_cmd=worker_cmd, stop_after_gate=a.teacher_only)
        except GateFailed as err:
            print(f'[v2] {err}', flush=True)
            status = 3
    res = write_report(run)
    print('\n' + res['markdown'])
    print(f"command: {info['command']}\nmachine: {info['machine']}\n"
          f'this call: {(time.time() - start) / 60:.1f} min; wrote {out}/results.*')
    if status:
        raise SystemExit(status)
    return res


if __name__ == '__main__':
    main()
