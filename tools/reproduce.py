"""The micro-scale reproduction: does AMD distil, and is it the teacher?

Protocol v3 (the default, configs/reproduce/teacher_protocol.py): on two data
sets, one teacher trained once with its checkpoints kept; every stage of it
(untrained ... the end) and a larger teacher are gated against the untrained
network; AMD serial students are distilled from every stage (the
dose-response), beside VideoMAE, over 8 seeds; the slope of student quality
on teacher quality and the paired claims come with 95% intervals.
Protocol v2 (configs/reproduce/motion_protocol.py, results in
docs/results.md): one teacher, the Table 1 ablations, fine-tuning, and its
low-label addendum. docs/reproduce.md.

    python tools/reproduce.py plan [--quick]       # stages, a time estimate, expected interval widths
    python tools/reproduce.py run --quick          # v3 on the motion clips, 3 stages x 3 seeds, ~20 min
    python tools/reproduce.py run                  # the full protocol (both data sets, resumable)
    python tools/reproduce.py run --teacher-only   # the teachers and their gates (to size a teacher)
    python tools/reproduce.py curve --out RUN      # score every saved teacher checkpoint (a pilot curve)
    python tools/reproduce.py run configs/reproduce/motion_protocol.py   # protocol v2
    python tools/reproduce.py run configs/reproduce/motion_protocol.py --set data.source=lists \\
        data.train=train.txt data.val=val.txt data.root=videos/ data.num_classes=10   # your own data
    python tools/reproduce.py lowlabel --from work_dirs/reproduce [--plan]
    python tools/reproduce.py report --out work_dirs/reproduce   # re-make the report
    python tools/reproduce.py slope --out RUN/motion --stages epoch_10 epoch_40   # slopes, a subset
    python tools/reproduce.py copy work_dirs/reproduce docs/results/mine   # its records, to commit
    python tools/reproduce.py compare RUN_A RUN_B   # every figure equal? (refactor pins)

A rerun into the same --out resumes where it stopped.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
import warnings

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
PROTOCOL = 'reproduce/teacher_protocol.py'          # under configs/ (v3; v2: motion_protocol.py)
LOWLABEL = 'reproduce/motion_protocol_lowlabel.py'
V2_RUN = osp.join(ROOT, 'docs', 'results', 'v2_full')  # seeds' spread for plan's widths


def _parser():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', required=True, metavar='{plan,run,curve,lowlabel,report,copy,compare}')

    def protocol_args(s, default, what):
        s.add_argument('protocol', nargs='?', default=None,
                       help=f'{what} file (default configs/{default})')
        s.add_argument('--set', nargs='+', metavar='KEY=VALUE',
                       help=f'override {what} keys; a different protocol needs a fresh --out')
        s.add_argument('--workers', type=int,
                       help="worker processes for the students (default: the file's)")

    def run_args(s):
        s.add_argument('--no-resume', action='store_true', help='start over in --out')
        s.add_argument('--quiet', action='store_true', help='no Runner logs, progress only')

    s = sub.add_parser('plan', help='print the protocol, its stages and an estimate')
    protocol_args(s, PROTOCOL, 'protocol')
    s.add_argument('--quick', action='store_true', help="the protocol's quick section")
    s.add_argument('--widths-from', metavar='RUN',
                   help='a finished run folder whose seeds\' spread predicts the 95%% interval '
                        "widths of this protocol's claims (default docs/results/v2_full)")
    s = sub.add_parser('run', help='run the protocol (resumes), then write the report')
    protocol_args(s, PROTOCOL, 'protocol')
    s.add_argument('--quick', action='store_true', help="the protocol's quick section")
    s.add_argument('--out', help='output folder (default work_dirs/reproduce[_quick])')
    run_args(s)
    s.add_argument('--force', action='store_true',
                   help='train the students even if the teacher fails its gate')
    s.add_argument('--teacher-only', action='store_true',
                   help='stop after the teacher and its gate (to size a teacher)')
    s = sub.add_parser('curve', help="score every saved checkpoint of a run's teacher "
                                     '(a pilot curve to size a teacher)')
    s.add_argument('--out', required=True, help='a run folder with a teacher and its gate')
    s.add_argument('--every', type=int, default=1, help='every N-th saved epoch')
    s = sub.add_parser('lowlabel', help='low-label fine-tuning of a finished run')
    protocol_args(s, LOWLABEL, 'addendum')
    s.add_argument('--from', dest='base', required=True, help='the protocol run folder')
    s.add_argument('--out', help='output folder (default <--from>_lowlabel)')
    s.add_argument('--plan', action='store_true', help='print the stages and an estimate')
    run_args(s)
    s.add_argument('--force', action='store_true',
                   help='fine-tune the students that are there when the run is unfinished')
    s = sub.add_parser('report', help="re-make a run folder's report from its records")
    s.add_argument('--out', required=True, help='the run folder')
    s.add_argument('--from', dest='base',
                   help='a low-label run: where its protocol run folder is now')
    s = sub.add_parser('slope', help='the dose-response slopes over chosen teacher stages '
                                     '(an exploratory reading beside the report)')
    s.add_argument('--out', required=True, help='one data set\'s run folder (or a low-label one)')
    s.add_argument('--from', dest='base', help='a low-label run: its protocol run folder')
    s.add_argument('--stages', nargs='+', required=True, metavar='STAGE',
                   help='stage names as in the report (untrained, epoch_10, ...)')
    s = sub.add_parser('copy', help="copy a run folder's records, reports and logs (not its "
                                    'checkpoints) into a folder to commit; safe while it runs')
    s.add_argument('run', help='the run folder')
    s.add_argument('dest', help='the folder to copy into')
    s = sub.add_parser('compare', help='compare every figure of two run folders (exit 1 '
                                       'on any difference): a change must not move them')
    s.add_argument('runs', nargs=2, metavar='RUN', help='two run folders')
    return p


def _say(msg):
    print(msg, flush=True)


def _command_record(out, estimate):
    from amd_mmaction.reproduce.cli import machine
    info = dict(command=' '.join([osp.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
                machine=machine(1), estimate=estimate)
    with open(osp.join(out, 'command.json'), 'w') as f:
        json.dump(info, f, indent=1)
    return info


def _report(run, start=None, info=None):
    from amd_mmaction.reproduce.arms import MultiRun, write_multi_report
    from amd_mmaction.reproduce.report import write_report
    res = write_multi_report(run, write_report) if isinstance(run, MultiRun) else write_report(run)
    print('\n' + res['markdown'])
    if info:
        print(f"command: {info['command']}\nmachine: {info['machine']}")
    took = '' if start is None else f'this call: {(time.time() - start) / 60:.1f} min; '
    print(f'{took}wrote {run.out}/results.*')
    return res


def _protocol(a):
    from amd_mmaction.config_files import config_file
    from amd_mmaction.reproduce.cli import parse_overrides
    from amd_mmaction.reproduce.protocol import estimate_all, load_protocol
    try:
        protocol = load_protocol(a.protocol or config_file(PROTOCOL), quick=a.quick,
                                 overrides=parse_overrides(a.set))
    except (ValueError, FileNotFoundError) as err:  # the message names the file and key
        raise SystemExit(f'reproduce.py {a.command}: {err}') from err
    if a.workers:
        protocol['workers'] = a.workers
    est = estimate_all(protocol)
    estimate = (f"rough estimate (idle 2-core machine): teacher {est['teacher'] / 60:.1f} min, "
                f"gate {est['gate'] / 60:.1f} min, {est['units']} students "
                f"{est['students'] / 60:.1f} min on {protocol['workers']} worker(s), "
                f"total {est['total'] / 60:.1f} min")
    return protocol, estimate


def _check_out(out, base=None):
    """A run folder is the tool's own: it resumes one it made (protocol.json)
    and starts in a new or empty one; it never writes into another folder,
    nor into the protocol run a low-label run reads."""
    if osp.isfile(out):
        raise SystemExit(f'reproduce.py: --out {out} is a file; give a folder')
    if base is not None and osp.isdir(out) and osp.samefile(out, base):
        raise SystemExit(f'reproduce.py lowlabel: --out {out} is the run it reads (--from); '
                         'give another folder (default <--from>_lowlabel)')
    if osp.isdir(out) and os.listdir(out) and not osp.isfile(osp.join(out, 'protocol.json')):
        raise SystemExit(f'reproduce.py: --out {out} holds other files and is not a run folder '
                         '(no protocol.json); give a new or empty folder')


def plan(a):
    from amd_mmaction.reproduce.protocol import all_stage_keys
    protocol, estimate = _protocol(a)
    print(json.dumps(protocol, indent=1))
    print('\n'.join(all_stage_keys(protocol)))
    print(estimate)
    widths_from = a.widths_from or (V2_RUN if osp.isfile(osp.join(V2_RUN, 'protocol.json'))
                                    else None)
    if widths_from:
        from amd_mmaction.reproduce.sizing import expected_widths, widths_markdown
        print(f'\nexpected 95% interval half-widths of the claims, from the spread of '
              f'{osp.relpath(widths_from)}:')
        print(widths_markdown(expected_widths(widths_from, protocol)))


def run(a):
    from amd_mmaction.reproduce.protocol import all_stage_keys
    from amd_mmaction.reproduce.runner import GateFailed, ProtocolRun
    from amd_mmaction.reproduce.worker import worker_command
    protocol, estimate = _protocol(a)
    out = a.out or osp.join('work_dirs', 'reproduce_quick' if a.quick else 'reproduce')
    _check_out(out)
    level = 'WARNING' if a.quiet else 'INFO'
    start = time.time()
    if 'datasets' in protocol:
        return _run_multi(a, protocol, out, level, estimate, start)
    r = ProtocolRun(protocol, out, resume=not a.no_resume, log=_say, log_level=level)
    info = _command_record(out, estimate)
    _say(f'[reproduce] {len(all_stage_keys(protocol))} stages; output in {out}; {estimate}')
    status = 0
    try:
        r.run(force=a.force, worker_cmd=worker_command(out, level),
              stop_after_gate=a.teacher_only)
    except GateFailed as err:
        _say(f'[reproduce] {err}')
        status = 3
    res = _report(r, start, info)
    if status:
        raise SystemExit(status)
    return res


def _run_multi(a, protocol, out, level, estimate, start):
    """A protocol over several data sets: each in <out>/<name>/, in turn."""
    from amd_mmaction.reproduce.arms import MultiRun
    from amd_mmaction.reproduce.protocol import all_stage_keys
    from amd_mmaction.reproduce.worker import worker_command
    session = time.time()
    r = MultiRun(protocol, out, resume=not a.no_resume, log=_say, log_level=level)
    info = _command_record(out, estimate)
    _say(f'[reproduce] {len(all_stage_keys(protocol))} stages over data sets '
         f'{list(r.arms)}; output in {out}; {estimate}')
    status = r.run(force=a.force, worker_cmd=lambda arm_out: worker_command(arm_out, level),
                   stop_after_gate=a.teacher_only)
    r.store.add_session(session, time.time() - session, r.all_done())
    res = _report(r, start, info)
    failed = [name for name, st in status.items() if st != 'done']
    if failed:
        _say(f'[reproduce] data set(s) {failed}: the teacher failed its gate (see above)')
        raise SystemExit(3)
    return res


def lowlabel(a):
    from amd_mmaction.config_files import config_file
    from amd_mmaction.reproduce.cli import parse_overrides
    from amd_mmaction.reproduce.lowlabel import LowLabelRun
    from amd_mmaction.reproduce.protocol import estimate_lowlabel_seconds, load_lowlabel
    from amd_mmaction.reproduce.worker import worker_command
    if not osp.isfile(osp.join(a.base, 'protocol.json')):
        raise SystemExit(f'{a.base} is not a protocol run folder (no protocol.json); '
                         'run tools/reproduce.py run first')
    try:
        ll = load_lowlabel(a.protocol or config_file(LOWLABEL), parse_overrides(a.set))
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f'reproduce.py lowlabel: {err}') from err
    if a.workers:
        ll['workers'] = a.workers
    out = a.out or osp.normpath(a.base) + '_lowlabel'
    _check_out(out, a.base)
    level = 'WARNING' if a.quiet else 'INFO'
    r = LowLabelRun(ll, a.base, out, resume=not a.no_resume, read_only=a.plan, log=_say,
                    log_level=level)
    data = r.records['data']['data']
    with open(data['val']) as f:
        val = sum(1 for line in f if line.strip())
    count = len([k for k in r.plan() if '/subset/' not in k])
    est = estimate_lowlabel_seconds(ll, data['num_classes'], val, count)
    estimate = (f"rough estimate (idle 2-core machine): {count} fine-tunings of "
                f"{est['clips']} clips, {est['total'] / 60:.1f} min on {ll['workers']} worker(s)")
    if a.plan:
        print(json.dumps(dict(r.p['lowlabel'], finetune=ll['finetune']), indent=1))
        print('\n'.join(r.plan()))
        print(estimate)
        return None
    info = _command_record(out, estimate)
    start = time.time()
    _say(f'[reproduce] low-label fine-tuning of {a.base}; output in {out}; {estimate}')
    r.run(force=a.force, worker_cmd=worker_command(out, level))
    return _report(r, start, info)


def curve(a):
    from amd_mmaction.reproduce.records import RecordStore
    from amd_mmaction.reproduce.runner import ProtocolRun
    try:
        p = RecordStore(a.out, read_only=True).read_protocol()
    except FileNotFoundError as err:
        raise SystemExit(f'curve: {err}') from err
    r = ProtocolRun(p, a.out, log=_say)
    rows = r.teacher_curve(a.every)
    print('| epoch | masked-pixel ratio | linear probe | k-NN | probe − untrained | '
          'k-NN − untrained |\n|---|---|---|---|---|---|')
    u = r.records['gate']['gate']['teacher_random']
    print(f"| 0 (untrained) | {u['recon_ratio']:.3f} | {u['probe_top1']:.1f}% | "
          f"{u['knn_top1']:.1f}% | | |")
    for row in rows:
        g = row['gate']
        vs = g['vs_untrained']
        print(f"| {row['epoch']} | {g['recon_ratio']:.3f} | {g['probe_top1']:.1f}% | "
              f"{g['knn_top1']:.1f}% | " + ' | '.join(
                  f"{vs[m]['margin']:+.1f} [{vs[m]['interval'][0]:+.1f}, "
                  f"{vs[m]['interval'][1]:+.1f}]" for m in ('probe', 'knn')) + ' |')
    return rows


def report(a):
    from amd_mmaction.reproduce.arms import MultiRun, is_multi
    from amd_mmaction.reproduce.records import RecordStore
    from amd_mmaction.reproduce.worker import open_run
    if is_multi(a.out):
        p = RecordStore(a.out, read_only=True).read_protocol()
        return _report(MultiRun(p, a.out, read_only=True))
    try:
        r = open_run(a.out, a.base, read_only=True)
    except FileNotFoundError as err:
        raise SystemExit(f'report: {err}') from err
    return _report(r)


def slope(a):
    """Slopes over a subset of the teacher stages. The protocol's slope is
    fitted over every stage (the report); a subset picked after seeing the
    results is printed as exploratory."""
    from amd_mmaction.reproduce.dose import slope_lines, summarize_dose
    from amd_mmaction.reproduce.report import per_seed, report_metrics
    from amd_mmaction.reproduce.worker import open_run
    try:
        r = open_run(a.out, a.base, read_only=True)
        d = summarize_dose(r, per_seed, report_metrics(r.p), slope_stages=a.stages)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'slope: {err}') from err
    if d is None:
        raise SystemExit(f'slope: {a.out} has no teacher stages (not a v3 run)')
    print(f"Exploratory (stages chosen by the reader, not fixed by the protocol): slopes over "
          f"{', '.join(d['slope_stages'])}")
    print('\n'.join(slope_lines(d)))
    return d


def copy(a):
    from amd_mmaction.reproduce.records import copy_run
    try:
        files = copy_run(a.run, a.dest)
    except FileNotFoundError as err:
        raise SystemExit(f'copy: {err}') from err
    print(f'copied {len(files)} file(s) from {a.run} to {a.dest}')
    return files


def compare(a):
    from amd_mmaction.reproduce.records import compare_runs
    for d in a.runs:
        if not osp.isfile(osp.join(d, 'protocol.json')):
            raise SystemExit(f'compare: {d} is not a run folder (no protocol.json)')
    from amd_mmaction.reproduce.arms import arm_dirs, is_multi
    if all(is_multi(d) for d in a.runs):
        names = [osp.basename(d) for d in arm_dirs(a.runs[0])]
        res = dict(figures=0, records=0, differences=[])
        for name in names:
            part = compare_runs(*(osp.join(d, name) for d in a.runs))
            for k in ('figures', 'records'):
                res[k] += part[k]
            res['differences'] += [f'{name}: {x}' for x in part['differences']]
    else:
        res = compare_runs(*a.runs)
    print('\n'.join(res['differences'][:50]))
    print(f"{res['figures']} figures in {res['records']} records compared: "
          f"{len(res['differences'])} difference(s)")
    if res['differences']:
        raise SystemExit(1)
    return res


def main(argv=None):
    a = _parser().parse_args(argv)
    warnings.filterwarnings('ignore')
    import amd_mmaction  # noqa: F401  (registries, compat shims)
    return dict(plan=plan, run=run, curve=curve, lowlabel=lowlabel, report=report,
                slope=slope, copy=copy, compare=compare)[a.command](a)


if __name__ == '__main__':
    main()
