"""Train with an amd-mmaction / mmaction2 config through mmengine's Runner.

    python tools/train.py configs/tiny/amd_tiny_motion.py [--work-dir D]
        [--resume [CKPT]] [--amp] [--cfg-options k=v ...] [--launcher pytorch]

One run per work dir: the run holds an OS lock on ``<work dir>/.lock`` for
its whole life (``amd_mmaction/engine/lock.py``; in a distributed job rank 0
holds it for all ranks); a second run there fails at once, naming the
holder. A refusal (``--resume`` / ``load_from`` checks, an untrusted
checkpoint, a locked work dir, a full disk) is one line on stderr, exit 1.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import amd_mmaction  # noqa: E402,F401  (patches the stack, registers modules)
from amd_mmaction.weights.io import add_trust_argument, trust_checkpoints  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from amd_mmaction.engine import preflight  # noqa: E402
from amd_mmaction.engine.cli import (cpu_distributed, load_config, run_main,  # noqa: E402
                                     work_dir_lock)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train a model')
    p.add_argument('config')
    p.add_argument('--work-dir', help='where logs and checkpoints go')
    p.add_argument('--resume', nargs='?', type=str, const='auto',
                   help='resume from CKPT, or from the latest checkpoint in '
                        'the work dir when no path is given')
    p.add_argument('--allow-fresh', action='store_true',
                   help='with --resume: start from scratch when the work dir has no '
                        'checkpoint (default: refuse, exit 1)')
    p.add_argument('--amp', action='store_true', help='mixed precision')
    add_trust_argument(p)
    p.add_argument('--auto-scale-lr', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                   default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args) -> Config:
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', {})['enable'] = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    cpu_distributed(cfg)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    trust_checkpoints(args.trust_checkpoint)
    cfg = build_config(args)
    # one run per work dir, taken before anything is read or written there
    # (the Runner writes its config copy and a log folder as it is built)
    with work_dir_lock(cfg, 'tools/train.py'):
        try:
            if cfg.get('resume'):
                ckpt = preflight.resume_target(cfg, cfg.get('load_from'), args.allow_fresh)
                cfg.resume, cfg.load_from = ckpt is not None, ckpt
            preflight.check_load_from(cfg)
        except preflight.RunFinished as done:  # exit 0: nothing was asked that is not done
            print(done)
            return None
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else \
            __import__('mmengine.registry', fromlist=['RUNNERS']).RUNNERS.build(cfg)
        runner.train()
    return runner


if __name__ == '__main__':
    run_main(main)
