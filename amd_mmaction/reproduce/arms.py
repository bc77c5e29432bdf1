"""A protocol over several data sets (protocol v3's ``datasets``): one
:class:`.runner.ProtocolRun` per data set, each in its own folder
``<out>/<name>/`` with its own protocol.json, records and report, run one
after the other; ``<out>/protocol.json`` holds the whole protocol and
``<out>/results.md`` puts the data sets' reports together.

Every arm is a whole protocol run, so resuming, workers and reports are the
single-data-set machinery's; a rerun of the whole skips the stages every arm
has recorded.
"""
import json
import os.path as osp
from typing import Callable, Dict, List, Optional

from amd_mmaction.reproduce.protocol import arm_names, arm_protocol
from amd_mmaction.reproduce.records import RecordStore
from amd_mmaction.reproduce.runner import LOG, GateFailed, ProtocolRun


class MultiRun:
    """Protocol ``p`` (with ``datasets``) run into ``out_dir``."""

    def __init__(self, p: dict, out_dir: str, resume: bool = True,
                 log: Callable[[str], None] = print, log_level: str = 'WARNING',
                 read_only: bool = False):
        self.p, self.out, self.log = p, out_dir, log
        if not read_only:
            self.store = RecordStore(out_dir)
            self.store.claim(p, resume)
        self.arms: Dict[str, ProtocolRun] = {
            name: ProtocolRun(arm_protocol(p, name), osp.join(out_dir, name), resume=resume,
                              log=log, log_level=log_level, read_only=read_only)
            for name in arm_names(p)}

    def run(self, force: bool = False, workers: Optional[int] = None,
            worker_cmd: Optional[Callable[[str], List[str]]] = None,
            stop_after_gate: bool = False) -> Dict[str, str]:
        """Every arm in turn; ``worker_cmd(arm_out)`` gives an arm's worker
        command. An arm whose teacher fails a required gate stops only
        itself: the next data set still runs. Returns {arm: 'done' or the
        gate failure}."""
        status = {}
        for name, arm in self.arms.items():
            self.log(f'{LOG} == data set {name} ({arm.out}) ==')
            try:
                arm.run(force=force, workers=workers,
                        worker_cmd=worker_cmd(arm.out) if worker_cmd else None,
                        stop_after_gate=stop_after_gate)
                status[name] = 'done'
            except GateFailed as err:
                self.log(f'{LOG} {name}: {err}')
                status[name] = str(err)
        return status

    def all_done(self, outputs: bool = True) -> bool:
        return all(arm.all_done(outputs) for arm in self.arms.values())


def write_multi_report(run: MultiRun, write_report: Callable) -> dict:
    """Each arm's report (``write_report(arm)``) and ``<out>/results.md``
    with them all, the dose-response slopes of every data set first."""
    parts, slopes = {}, ['| data set | student metric | slope on teacher metric | '
                         'holds |', '|---|---|---|---|']
    for name, arm in run.arms.items():
        res = write_report(arm)
        parts[name] = res
        dose = res['summary'].get('dose')
        for m, label in (dose or {}).get('metrics', []):
            s = dose['slopes'].get(m)
            if not s:
                continue
            if 'reason' in s:
                slopes.append(f'| {name} | {label} | {s["reason"]} | – |')
            else:
                slopes.append(f"| {name} | {label} | {s['slope']:+.3f} [{s['t'][0]:+.3f}, "
                              f"{s['t'][1]:+.3f}] (n={s['n_seeds']} seeds, {s['n_stages']} "
                              f"stages; x = teacher {dose['teacher_metric_name']}) | "
                              f"{'**yes**' if s['holds'] else 'no'} |")
    lines = ['## Dose-response slopes (student top-1 points per teacher top-1 point, 95% t '
             'interval over seeds)', ''] + slopes + ['']
    for name, res in parts.items():
        lines += [f'## Data set: {name}', '', f'Raw records and plots: [{name}/]({name}/)', '',
                  res['markdown']]
    md = '\n'.join(lines)
    with open(osp.join(run.out, 'results.md'), 'w') as f:
        f.write(md)
    with open(osp.join(run.out, 'results.json'), 'w') as f:
        json.dump({name: res['summary'] for name, res in parts.items()}, f, indent=1)
    return dict(markdown=md, parts=parts)


def is_multi(out_dir: str) -> bool:
    """True when ``out_dir`` holds a protocol with several data sets."""
    path = osp.join(out_dir, 'protocol.json')
    if not osp.isfile(path):
        return False
    with open(path) as f:
        return 'datasets' in json.load(f)


def arm_dirs(out_dir: str) -> List[str]:
    with open(osp.join(out_dir, 'protocol.json')) as f:
        return [osp.join(out_dir, name) for name in json.load(f)['datasets']]

