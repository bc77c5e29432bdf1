"""Low-label fine-tuning of a finished protocol run (the addendum,
configs/reproduce/motion_protocol_lowlabel.py; ``tools/reproduce.py lowlabel``).

Every pre-trained student of the run is fine-tuned again, with the
protocol's recipe and multi-view test, on ``per_class`` train clips per
class: one class-balanced draw per seed (``subset_seed + seed``), the same
for every variant of that seed, so differences stay paired by seed. The
protocol run is read, never written; this run keeps its own records,
resumable the same way (a record names the pre-training record it was built
on, and the draw).
"""
import copy
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np

from amd_mmaction.reproduce.protocol import seeds_of, stage_key, units
from amd_mmaction.reproduce.records import RecordStore
from amd_mmaction.reproduce.runner import ProtocolRun


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


class LowLabelRun(ProtocolRun):
    """Low-label fine-tuning (``ll``: the addendum) of the protocol run in
    ``base_out``, into ``out_dir``. The base run's records (data, teacher,
    students) are this run's parents."""

    CHILD_KINDS = ProtocolRun.CHILD_KINDS + ('lowlabel',)

    def __init__(self, ll: dict, base_out: str, out_dir: str, **kw):
        base = RecordStore(base_out, read_only=True)
        base_p = base.read_protocol()
        p = copy.deepcopy(base_p)
        p['evaluation'] = dict(p['evaluation'], finetune=ll['finetune'])
        p['workers'] = ll['workers']
        p['lowlabel'] = dict(per_class=ll['per_class'], subset_seed=ll['subset_seed'],
                             base=osp.abspath(base_out))
        self.base_out = base_out
        self._data = None
        super().__init__(p, out_dir, base=base, **kw)

    @classmethod
    def reopen(cls, out_dir: str, base_out: Optional[str] = None, **kw) -> 'LowLabelRun':
        """The low-label run of ``out_dir`` as it was saved (its
        protocol.json); ``base_out``: where the protocol run lies now
        (default: where it lay when this run was made)."""
        p = RecordStore(out_dir, read_only=True).read_protocol()
        base_out = base_out or p['lowlabel']['base']
        if not osp.isfile(osp.join(base_out, 'protocol.json')):
            raise FileNotFoundError(
                f'{out_dir} was built on the protocol run {base_out}, which is not there '
                '(no protocol.json); pass the folder where it is now (--from)')
        ll = dict(p['lowlabel'], finetune=p['evaluation']['finetune'], workers=p['workers'])
        run = cls(ll, base_out, out_dir, **kw)
        run.p['lowlabel']['base'] = p['lowlabel']['base']  # as recorded, wherever it lies now
        return run

    @property
    def data(self) -> dict:
        return self._data or self.records['data']['data']

    def lowlabel_units(self) -> List[dict]:
        done = [u for u in units(self.p)
                if self.valid(stage_key(dict(kind='pretrain', **u))) is not None]
        return done

    def missing_students(self, outputs: bool = True) -> List[str]:
        return [stage_key(dict(kind='pretrain', **u)) for u in units(self.p)
                if self.valid(stage_key(dict(kind='pretrain', **u)), outputs) is None]

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
                f'{self.base_out} lacks {len(missing)} pre-trained student(s) ({missing[:3]}'
                f'{" ..." if len(missing) > 3 else ""}): finish the protocol run first '
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

    def all_done(self, outputs: bool = True) -> bool:
        return not self.missing_students(outputs) and all(
            self.valid(stage_key(dict(kind='lowlabel', **u)), outputs) is not None
            for u in units(self.p))

    def plan(self) -> List[str]:
        seeds = sorted({s for v in self.p['variants'] for s in seeds_of(self.p, v)})
        return [subset_key(s) for s in seeds] + [
            stage_key(dict(kind='lowlabel', **u)) for u in units(self.p)]

