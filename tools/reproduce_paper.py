"""Reproduce AMD's central claims at micro scale, from one command.

Per seed: write a labeled motion data set (real VP9 videos; the label is the
direction of motion), pre-train a larger teacher with plain VideoMAE,
pre-train same-size students (VideoMAE, AMD serial / parallel / direct /
generation, DMAE, AMD with a lower teacher mask ratio) with equal epochs,
then fine-tune and linear-probe each and test it (2 clips x 3 crops).
Writes results.md / .json / .csv and results.png into --out.

    python tools/reproduce_paper.py                 # full protocol
    python tools/reproduce_paper.py --quick         # headline only, < 15 min
    python tools/reproduce_paper.py --report-only   # re-make the tables

A rerun into the same --out skips the stages already done.
"""
import argparse
import ast
import json
import os
import os.path as osp
import platform
import sys
import time
import warnings

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
DEFAULT = osp.join(ROOT, 'configs', 'reproduce', 'motion_protocol.py')


def machine(threads) -> str:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if 'model name' in line)
    except (OSError, StopIteration):
        pass
    return (f'{cpu}, {os.cpu_count()} cores, torch {torch.__version__} '
            f'({threads or torch.get_num_threads()} thread(s) per stage), '
            f'Python {platform.python_version()}')


def parse_overrides(items):
    """key.sub=value (value parsed as JSON, else as a Python literal, else
    kept as a string) -> nested dict."""
    out = {}
    for item in items or []:
        if '=' not in item:
            raise SystemExit(f'--set expects key=value, got {item!r}')
        key, value = item.split('=', 1)
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(value)  # ['a', 'b'], True, (1, 2)
            except (ValueError, SyntaxError):
                pass
        node = out
        *parents, leaf = key.split('.')
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = value
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('protocol', nargs='?', default=DEFAULT, help='protocol file')
    p.add_argument('--quick', action='store_true', help="the protocol's quick section")
    p.add_argument('--out', help='output folder (default work_dirs/reproduce[_quick])')
    p.add_argument('--no-resume', action='store_true', help='start over in --out')
    p.add_argument('--report-only', action='store_true',
                   help='only re-make the report from the recorded stages')
    p.add_argument('--plan', action='store_true',
                   help='print the stages and a rough time estimate, run nothing')
    p.add_argument('--threads', type=int, default=1,
                   help='torch threads per stage (default 1; 0 keeps torch\'s default)')
    p.add_argument('--quiet', action='store_true',
                   help="only this tool's progress lines, not the Runner's logs")
    p.add_argument('--set', nargs='+', metavar='KEY=VALUE',
                   help='override protocol keys (e.g. seeds=[0] pretrain.epochs=1); '
                        'a different protocol: use a fresh --out')
    a = p.parse_args(argv)
    warnings.filterwarnings('ignore')
    import amd_mmaction  # noqa: F401  (registries, compat shims)
    from amd_mmaction.reproduce.v1_protocol import estimate_seconds, load_protocol, plan_stages
    from amd_mmaction.reproduce.v1_run import ProtocolRun
    from amd_mmaction.reproduce.v1_report import markdown, summarize, write_report

    protocol = load_protocol(a.protocol, quick=a.quick, overrides=parse_overrides(a.set))
    est = estimate_seconds(protocol)
    estimate = ('rough estimate (1 thread, idle machine): ' + ', '.join(
        f'{k} {v / 60:.1f} min' for k, v in est.items() if v))
    if a.plan:
        from amd_mmaction.reproduce.v1_protocol import stage_key
        print(json.dumps(protocol, indent=1))
        print('\n'.join(stage_key(s) for s in plan_stages(protocol)))
        print(estimate)
        return None
    out = a.out or osp.join('work_dirs', 'reproduce_quick' if a.quick else 'reproduce')
    run = ProtocolRun(protocol, out, resume=not a.no_resume,
                      log=lambda m: print(m, flush=True),
                      log_level='WARNING' if a.quiet else 'INFO', threads=a.threads or None)
    start = time.time()
    if not a.report_only:
        print(f'[reproduce] {len(plan_stages(protocol))} stages, '
              f'{len(run.records)} already done; output in {out}; {estimate}', flush=True)
        records = run.run()
    else:
        records = [r for r in run.records.values()]
    info = dict(command=' '.join([osp.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
                machine=machine(a.threads), threads=a.threads or None, finished=time.strftime('%Y-%m-%d %H:%M:%S %Z'),
                this_call_seconds=time.time() - start)
    paths = write_report(records, protocol, out, extra=info)
    print('\n' + markdown(summarize(records, protocol)))
    print(f"command: {info['command']}\nmachine: {info['machine']}")
    print('wrote ' + ', '.join(paths.values()))
    return paths


if __name__ == '__main__':
    main()
