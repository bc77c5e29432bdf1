"""Test (and evaluate) a checkpoint with an amd-mmaction / mmaction2 config
through mmengine's Runner; mmaction2's ``tools/test.py`` interface.

    python tools/test.py CONFIG CHECKPOINT [--work-dir D] [--dump out.pkl|out.json]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi] [--no-strict]
        [--trust-checkpoint CHECKPOINT]

``--dump out.pkl`` writes mmaction2's pickle of the predictions (mmengine
``DumpResults``); ``--dump out.json`` the same records as JSON
(``amd_mmaction.evaluation.results_json``), readable without unpickling.
The checkpoint must fit the model exactly (a missing or extra weight is an
error naming the keys: a pre-training checkpoint given here would otherwise
test a randomly initialised head); ``--no-strict`` warns instead, as
mmaction2 does.

The run holds the work dir's lock for its whole life, as tools/train.py
(a second run there fails at once, naming the holder); a refusal
(untrusted or unreadable checkpoint, weights that do not fit, a locked
work dir) is one line on stderr, exit 1.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import amd_mmaction  # noqa: E402,F401  (patches the stack, registers modules)
from amd_mmaction.weights.io import add_trust_argument, trust_checkpoints  # noqa: E402
import amd_mmaction.evaluation.results_json  # noqa: E402,F401  (DumpResultsJSON)
from amd_mmaction.engine import preflight  # noqa: E402
from amd_mmaction.engine.cli import (CommandError, check_output, cpu_distributed,  # noqa: E402
                                     load_config, run_main, work_dir_lock)
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dist import get_rank  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

DUMPS = {'.pkl': 'DumpResults', '.pickle': 'DumpResults', '.json': 'DumpResultsJSON'}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Test (and evaluate) a model')
    p.add_argument('config', help='test config file path')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--work-dir', help='where the test log and metrics go')
    p.add_argument('--dump', help='write predictions to a .pkl/.pickle (mmaction2) '
                                  'or .json file')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                   default='none')
    p.add_argument('--no-strict', action='store_true',
                   help='load a checkpoint that misses or adds weights (warn only)')
    add_trust_argument(p)
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.dump:
        ext = osp.splitext(args.dump)[1].lower()
        if ext not in DUMPS:
            p.error(f'--dump {args.dump!r}: the file must end with one of {sorted(DUMPS)}')
    if '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
        p.error(f'checkpoint {args.checkpoint!r} does not exist')
    if args.dump:  # an existing dump is replaced (a re-test), an input never
        check_output(args.dump, [args.config, args.checkpoint], force=True, what='--dump')
    return args


def build_config(args) -> Config:
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    # loaded by load_strictly (mmengine's load_or_resume is never strict)
    cfg.load_from, cfg.resume = None, False
    if args.dump:
        dump = dict(type=DUMPS[osp.splitext(args.dump)[1].lower()], out_file_path=args.dump)
        evaluators = cfg.get('test_evaluator') or []
        if not isinstance(evaluators, (list, tuple)):
            evaluators = [evaluators]
        cfg.test_evaluator = list(evaluators) + [dump]
    cpu_distributed(cfg)
    return cfg


def load_strictly(runner, args) -> None:
    """Make the Runner load CHECKPOINT where it would load ``load_from``
    (after the before_run hooks, e.g. EMA), strictly unless --no-strict."""
    def load():
        try:
            runner.load_checkpoint(args.checkpoint, strict=not args.no_strict)
        except RuntimeError as err:
            if 'do not match' not in str(err):  # mmengine's strict key check
                raise
            raise CommandError(
                f'checkpoint {args.checkpoint!r} does not fit the model of {args.config}: '
                f'{err}\nA pre-training checkpoint must be exported '
                '(tools/export_checkpoint.py) and fine-tuned first; --no-strict '
                'tests anyway.') from err
    runner.load_or_resume = load


def main(argv=None):
    args = parse_args(argv)
    trust_checkpoints(args.trust_checkpoint)
    cfg = build_config(args)
    with work_dir_lock(cfg, 'tools/test.py'):  # one run per work dir, as tools/train.py
        # unreadable, untrusted: refused before the Runner writes its log folder
        if '://' not in args.checkpoint:
            preflight.read(args.checkpoint)
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        load_strictly(runner, args)
        metrics = runner.test()
    if get_rank() == 0:
        print('test metrics: ' + ', '.join(f'{k}={v:.4f}' if isinstance(v, float) else
                                           f'{k}={v}' for k, v in metrics.items()))
        if args.dump:
            print(f'predictions written to {args.dump}')
    return metrics


if __name__ == '__main__':
    run_main(main)
