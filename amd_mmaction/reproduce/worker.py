"""A worker process of a reproduction run, and how to open a run folder.

    python -m amd_mmaction.reproduce.worker OUT LOG_LEVEL INDEX COUNT

runs every COUNT-th student (from INDEX) of the run saved in OUT (its
protocol.json), one torch thread: a protocol run or a low-label run.
"""
import sys
from typing import List, Optional, Union

from amd_mmaction.reproduce.lowlabel import LowLabelRun
from amd_mmaction.reproduce.records import RecordStore
from amd_mmaction.reproduce.runner import ProtocolRun


def worker_command(out_dir: str, log_level: str) -> List[str]:
    """The command a run starts its workers with (+ [index, count])."""
    return [sys.executable, '-m', 'amd_mmaction.reproduce.worker', out_dir, log_level]


def open_run(out_dir: str, base_out: Optional[str] = None,
             **kw) -> Union[ProtocolRun, LowLabelRun]:
    """The run saved in ``out_dir`` (its protocol.json): a low-label run
    when it has a ``lowlabel`` section (``base_out``: where its protocol
    run lies now, default where it lay), else a protocol run."""
    p = RecordStore(out_dir, read_only=True).read_protocol()
    if 'lowlabel' in p:
        return LowLabelRun.reopen(out_dir, base_out, **kw)
    return ProtocolRun(p, out_dir, **kw)


def main(argv: List[str]):
    out_dir, log_level, index, count = argv
    import torch

    import amd_mmaction  # noqa: F401  (registers, patches the stack)
    torch.set_num_threads(1)
    run = open_run(out_dir, resume=True, log=lambda m: print(m, flush=True),
                   log_level=log_level, worker=int(index))
    run.run_units(int(index), int(count))


if __name__ == '__main__':
    main(sys.argv[1:])
