"""The record store of a reproduction run folder.

Every finished stage appends one JSON line to a records file:
``records.jsonl`` for the main process, ``records.w<i>.jsonl`` for worker
``i`` (so processes never write the same file). Reading merges every
``records*.jsonl`` of the folder, the newest record of a key winning; a line
cut by a kill is skipped (that stage runs again). A record names the records
it was built on (``parent_key`` / ``parent_id``, and ``subset_key`` /
``subset_id`` for the low-label draw), so a stage run anew makes what was
built on its old output stale without any other bookkeeping. The folder also
holds ``protocol.json`` (the protocol it runs; another one is refused) and
``sessions.jsonl`` (one line per call of the tool: start, seconds, complete).
"""
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional

# Record fields naming another record a record was built on: <dep>_key, <dep>_id.
DEPENDS_ON = ('parent', 'subset')


class RecordStore:
    """The records of ``out_dir``; ``worker``: this process writes
    ``records.w<worker>.jsonl``; ``read_only``: never writes; ``base``: the
    store of a run this one builds on (its records are read as if they were
    this run's, never written)."""

    def __init__(self, out_dir: str, worker: Optional[int] = None, read_only: bool = False,
                 base: Optional['RecordStore'] = None):
        self.out, self.base = out_dir, base
        self.file = None
        if not read_only:
            name = 'records.jsonl' if worker is None else f'records.w{worker}.jsonl'
            self.file = osp.join(out_dir, name)
        self.records = self.load()

    # -- the protocol of the folder ---------------------------------------
    @property
    def protocol_file(self) -> str:
        return osp.join(self.out, 'protocol.json')

    def read_protocol(self) -> dict:
        if not osp.isfile(self.protocol_file):
            raise FileNotFoundError(f'{self.out} is not a reproduction run folder (no '
                                    'protocol.json); run tools/reproduce.py run first')
        with open(self.protocol_file) as f:
            return json.load(f)

    def claim(self, p: dict, resume: bool = True):
        """Make ``out_dir`` the folder of protocol ``p``: with ``resume``, a
        folder holding another protocol is refused (ValueError naming the
        sections that differ); without, its records are removed."""
        os.makedirs(self.out, exist_ok=True)
        if resume and osp.isfile(self.protocol_file):
            old = self.read_protocol()
            new = json.loads(json.dumps(p))
            if old != new:
                diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                raise ValueError(f'{self.protocol_file} holds another protocol (differs in '
                                 f'{diff}); use another --out, or --no-resume to start this '
                                 'one over')
        elif not resume:
            for f in glob.glob(osp.join(self.out, 'records*.jsonl')):
                os.remove(f)
            self.records = self.load()
        with open(self.protocol_file, 'w') as f:
            json.dump(p, f, indent=1)

    # -- records ---------------------------------------------------------
    def load(self) -> Dict[str, dict]:
        """Every record of the folder (after the base run's), newest per key."""
        out = dict(self.base.records) if self.base is not None else {}
        mine: Dict[str, dict] = {}
        for path in sorted(glob.glob(osp.join(self.out, 'records*.jsonl'))):
            with open(path) as f:
                for line in f:
                    if line.strip():
                        try:
                            r = json.loads(line)
                        except json.JSONDecodeError:
                            continue  # a line cut by a kill: that stage runs again
                        if r['key'] not in mine or r['finished'] >= mine[r['key']]['finished']:
                            mine[r['key']] = r
        out.update(mine)
        self.own = mine
        return out

    def busy_seconds(self) -> float:
        """Wall time during which at least one of this folder's own stages ran
        (not the base run's): the union of their ``[started, finished]``
        intervals. It counts every session, killed ones included (their
        finished stages are recorded, their sessions are not), and leaves out
        the gaps between sessions."""
        spans = sorted((r['started'], r['finished']) for r in self.own.values()
                       if r.get('started') is not None and r.get('finished') is not None)
        total, end = 0.0, -float('inf')
        for a, b in spans:
            if b <= end:
                continue
            total += b - max(a, end)
            end = b
        return total

    def reload(self):
        self.records = self.load()

    def save(self, rec: dict):
        if self.file is None:
            raise RuntimeError(f'{self.out} was opened read-only')
        self.records[rec['key']] = rec
        self.own[rec['key']] = rec
        with open(self.file, 'a') as f:
            f.write(json.dumps(rec) + '\n')

    def valid(self, key: str, outputs: bool = True) -> Optional[dict]:
        """The record of ``key`` if it is current: built on the current
        records it names (``DEPENDS_ON``) and, with ``outputs``, its output
        files still exist (a report of a copied folder reads the records
        alone)."""
        r = self.records.get(key)
        if r is None:
            return None
        if outputs and not all(osp.exists(path) for path in r.get('outputs', [])):
            return None
        for dep in DEPENDS_ON:
            if r.get(f'{dep}_key'):
                d = self.valid(r[f'{dep}_key'], outputs)
                if d is None or d['id'] != r[f'{dep}_id']:
                    return None
        return r

    # -- sessions --------------------------------------------------------
    @property
    def sessions_file(self) -> str:
        return osp.join(self.out, 'sessions.jsonl')

    def add_session(self, started: float, seconds: float, complete: bool):
        with open(self.sessions_file, 'a') as f:
            f.write(json.dumps(dict(started=started, seconds=seconds, complete=complete)) + '\n')

    def sessions(self) -> List[dict]:
        if not osp.isfile(self.sessions_file):
            return []
        with open(self.sessions_file) as f:
            return [json.loads(x) for x in f if x.strip()]


# -- copying a run's records (to commit them) ----------------------------------
# What a report, a comparison and a reader need of a run folder: its protocol,
# records, sessions, command, pilot curve, reports and logs; not the stage
# folders (checkpoints, videos, Runner logs).
RUN_FILES = ('protocol.json', 'command.json', 'sessions.jsonl', 'teacher_curve.jsonl',
             'results.md', 'results.json', 'results.csv', 'results.png', 'dose.png')
RUN_PATTERNS = ('records*.jsonl', 'worker*.log')


def copy_run(src: str, dst: str) -> List[str]:
    """Copy the record files of run folder ``src`` (and of each data set's
    folder, for a protocol with several) into ``dst``; return the copied
    paths. Each file is written to a temporary name and renamed, so a copy
    taken while the run goes on never holds half a file."""
    import shutil
    if not osp.isfile(osp.join(src, 'protocol.json')):
        raise FileNotFoundError(f'{src} is not a reproduction run folder (no protocol.json)')
    with open(osp.join(src, 'protocol.json')) as f:
        arms = list(json.load(f).get('datasets') or [])
    copied = []
    for sub in [''] + arms:
        here, there = osp.join(src, sub), osp.join(dst, sub)
        names = [n for n in RUN_FILES if osp.isfile(osp.join(here, n))]
        for pattern in RUN_PATTERNS:
            names += sorted(osp.basename(x) for x in glob.glob(osp.join(glob.escape(here), pattern)))
        os.makedirs(there, exist_ok=True)
        for name in names:
            tmp = osp.join(there, f'.{name}.tmp')
            shutil.copyfile(osp.join(here, name), tmp)
            os.replace(tmp, osp.join(there, name))
            copied.append(osp.join(there, name))
    return copied


# -- comparing two runs ------------------------------------------------------
# Record fields that differ between two runs of the same protocol by nature:
# ids, clocks and the paths of their own folders.
VOLATILE = frozenset({'id', 'parent_id', 'started', 'finished', 'seconds', 'outputs',
                      'checkpoint', 'config', 'data', 'stages'})


def _figures(x, path=''):
    """(dotted path, value) of every leaf of a record, volatile fields left out."""
    if isinstance(x, dict):
        for k, v in x.items():
            if k not in VOLATILE and not k.endswith('_id'):
                yield from _figures(v, f'{path}.{k}' if path else k)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _figures(v, f'{path}[{i}]')
    else:
        yield path, x


def compare_runs(a_dir: str, b_dir: str) -> dict:
    """Every figure of two run folders' records, compared exactly (the
    refactor pin: the same protocol run before and after a change must agree
    bit for bit on one machine). Returns dict(records, figures, differences:
    ['key.path: a vs b', ...]); stage keys present in one run only are
    differences too."""
    runs = [RecordStore(d, read_only=True).load() for d in (a_dir, b_dir)]
    diffs = [f'{k}: only in {d}' for k, d in
             [(k, a_dir) for k in sorted(set(runs[0]) - set(runs[1]))]
             + [(k, b_dir) for k in sorted(set(runs[1]) - set(runs[0]))]]
    figures = 0
    for key in sorted(set(runs[0]) & set(runs[1])):
        fa, fb = (dict(_figures(r[key])) for r in runs)
        for path in sorted(set(fa) | set(fb)):
            va, vb = fa.get(path), fb.get(path)
            if isinstance(va, str) and isinstance(vb, str):  # a path inside the run folder
                va, vb = va.replace(a_dir, '<run>'), vb.replace(b_dir, '<run>')
            figures += isinstance(va, (int, float)) and not isinstance(va, bool)
            if va != vb:
                diffs.append(f'{key}.{path}: {va!r} vs {vb!r}')
    return dict(records=len(runs[0]), figures=figures, differences=diffs)
