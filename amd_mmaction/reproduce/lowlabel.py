"""Low-label fine-tuning of a finished protocol v2 run (configs/reproduce/
motion_protocol_v2_lowlabel.py, tools/reproduce_v2_lowlabel.py).

Every pre-trained student of the v2 run is fine-tuned again, with v2's
recipe and multi-view test, on ``per_class`` train clips per class: one
class-balanced draw per seed (``subset_seed + seed``), the same for every
variant of that seed, so differences stay paired by seed. The v2 run is read,
never written; this run keeps its own records, resumable the same way
(a record names the v2 pre-training record it was built on).
"""
import copy
import json
import os
import os.path as osp
import sys
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np

from amd_mmaction.reproduce.v1_protocol import _merge
from amd_mmaction.reproduce.protocol import seeds_of, stage_key, units
from amd_mmaction.reproduce.runner import V2Run

KEYS = ('per_class', 'subset_seed', 'finetune', 'workers')


def load_lowlabel(path: str, overrides: Optional[dict] = None) -> dict:
    """The addendum file as a dict; ValueError naming a wrong key."""
    from mmengine.config import Config
    raw = {k: v for k, v in Config.fromfile(path).to_dict().items() if k in KEYS}
    unknown = sorted(set(overrides or {}) - set(KEYS))
    if unknown:
        raise ValueError(f'{path}: unknown key(s) {unknown}; the addendum has {KEYS}')
    raw = _merge(raw, copy.deepcopy(overrides or {}))
    missing = [k for k in KEYS if k not in raw]
    if missing:
        raise ValueError(f'{path}: missing key(s) {missing}; a low-label addendum needs {KEYS}')
    for key in ('per_class', 'workers'):
        if not isinstance(raw[key], int) or raw[key] < 1:
            raise ValueError(f'{path}: {key} must be an int >= 1, got {raw[key]!r}')
    if not isinstance(raw['subset_seed'], int):
        raise ValueError(f'{path}: subset_seed must be an int, got {raw["subset_seed"]!r}')
    for key in ('epochs', 'batch_size', 'val_interval'):
        v = raw['finetune'].get(key)
        if not isinstance(v, int) or v < 1:
            raise ValueError(f'{path}: finetune.{key} must be an int >= 1, got {v!r}')
    return raw


def balanced_subset(list_file: str, per_class: int, seed: int, out_file: str) -> Dict[int, int]:
    """Write ``per_class`` lines of each label of ``list_file`` (drawn
    without replacement, kept in file order) to ``out_file``; return the
    count per label. A label with fewer lines is an error naming it."""
    by_label = defaultdict(list)
    with open(list_file) as f:
        lines = [x.strip() for x in f if x.strip()]
    for i, line in enumerate(lines):
        by_label[int(line.rsplit(' ', 1)[1])].append(i)
    short = {k: len(v) for k, v in by_label.items() if len(v) < per_class}
    if short:
        raise ValueError(f'{list_file}: per_class={per_class} but label(s) {sorted(short)} have '
                         f'only {[short[k] for k in sorted(short)]} clip(s)')
    rng = np.random.default_rng(seed)
    keep = sorted(int(i) for k in sorted(by_label)
                  for i in rng.choice(by_label[k], per_class, replace=False))
    tmp = out_file + '.tmp'
    with open(tmp, 'w') as f:
        f.write(''.join(lines[i] + '\n' for i in keep))
    os.replace(tmp, out_file)
    return {k: per_class for k in sorted(by_label)}


def subset_key(seed: int) -> str:
    return stage_key(dict(kind='subset', variant='train', seed=seed))


class LowLabelRun(V2Run):
    """Low-label fine-tuning (``ll``: the addendum) of the v2 run in
    ``base_out``, into ``out_dir``."""

    CHILD_KINDS = V2Run.CHILD_KINDS + ('lowlabel',)

    def __init__(self, ll: dict, base_out: str, out_dir: str, **kw):
        with open(osp.join(base_out, 'protocol.json')) as f:
            base_p = json.load(f)
        self.base = V2Run(base_p, base_out, read_only=True)
        p = copy.deepcopy(base_p)
        p['evaluation'] = dict(p['evaluation'], finetune=ll['finetune'])
        p['workers'] = ll['workers']
        p['lowlabel'] = dict(per_class=ll['per_class'], subset_seed=ll['subset_seed'],
                             base=osp.abspath(base_out))
        self._data = None
        super().__init__(p, out_dir, **kw)

    # the v2 run's records (data, teacher, students) are this run's parents
    def _load_records(self) -> Dict[str, dict]:
        return {**self.base.records, **super()._load_records()}

    def valid(self, key: str) -> Optional[dict]:
        r = super().valid(key)
        if r is not None and r.get('subset_key'):  # built on the current draw
            sub = super().valid(r['subset_key'])
            if sub is None or sub['id'] != r['subset_id']:
                return None
        return r

    @property
    def data(self) -> dict:
        return self._data or self.records['data']['data']

    def lowlabel_units(self) -> List[dict]:
        done = [u for u in units(self.p)
                if self.valid(stage_key(dict(kind='pretrain', **u))) is not None]
        return done

    def missing_students(self) -> List[str]:
        return [stage_key(dict(kind='pretrain', **u)) for u in units(self.p)
                if self.valid(stage_key(dict(kind='pretrain', **u))) is None]

    # -- stages --------------------------------------------------------
    def run_subset(self, stage):
        ll = self.p['lowlabel']
        work = self.stage_dir(stage)
        os.makedirs(work, exist_ok=True)
        path = osp.join(work, f"train_{ll['per_class']}_per_class.txt")
        counts = balanced_subset(self.records['data']['data']['train'], ll['per_class'],
                                 ll['subset_seed'] + stage['seed'], path)
        return dict(train=path, counts=counts, outputs=[path])

    def run_lowlabel(self, stage, pre):
        sub = self.valid(subset_key(stage['seed']))
        self._data = dict(self.records['data']['data'], train=sub['train'])
        try:
            body = self.run_finetune(stage, pre)
        finally:
            self._data = None
        return dict(body, subset_key=subset_key(stage['seed']), subset_id=sub['id'])

    # -- driver --------------------------------------------------------
    def run_shared(self, force: bool = False):
        missing = self.missing_students()
        if missing and not force:
            raise RuntimeError(
                f'{self.base.out} lacks {len(missing)} pre-trained student(s) ({missing[:3]}'
                f'{" ..." if len(missing) > 3 else ""}): finish the v2 run first '
                '(--force fine-tunes the students that are there)')
        seeds = sorted({u['seed'] for u in self.lowlabel_units()})
        for seed in seeds:
            if self.valid(subset_key(seed)) is None:
                self._run_stage(dict(kind='subset', variant='train', seed=seed), 'data')

    def run_units(self, index: int = 0, count: int = 1):
        for i, unit in enumerate(self.lowlabel_units()):
            if i % count != index:
                continue
            stage = dict(kind='lowlabel', **unit)
            if self.valid(stage_key(stage)) is None:
                self._run_stage(stage, stage_key(dict(kind='pretrain', **unit)))

    def all_done(self) -> bool:
        return not self.missing_students() and all(
            self.valid(stage_key(dict(kind='lowlabel', **u))) is not None for u in units(self.p))

    def plan(self) -> List[str]:
        seeds = sorted({s for v in self.p['variants'] for s in seeds_of(self.p, v)})
        return [subset_key(s) for s in seeds] + [
            stage_key(dict(kind='lowlabel', **u)) for u in units(self.p)]


def worker_main(out_dir: str, index: int, count: int, log_level: str = 'WARNING'):
    import amd_mmaction  # noqa: F401  (registers, patches the stack)
    import torch
    torch.set_num_threads(1)
    with open(osp.join(out_dir, 'protocol.json')) as f:
        p = json.load(f)
    ll = dict(p['lowlabel'], finetune=p['evaluation']['finetune'], workers=p['workers'])
    run = LowLabelRun(ll, p['lowlabel']['base'], out_dir, log=lambda m: print(m, flush=True),
                      log_level=log_level, worker=index)
    run.run_units(index, count)


if __name__ == '__main__':
    worker_main(sys.argv[1], int(sys.argv[3]), int(sys.argv[4]), sys.argv[2])
