"""Model-zoo table and metafile for a list of configs.

    python tools/model_zoo.py configs/pretrain/*.py configs/tiny/*.py \
        --out-md docs/model_zoo.md --out-yaml metafile.yml [--no-speed] [--force]
    python tools/model_zoo.py CFG --checkpoints CFG=ckpt.pth --eval

Teacher checkpoints that are not on disk are replaced by random teachers
(same parameters, FLOPs and speed) and the row says so. Top-1 is filled
only for configs given a checkpoint with --eval (through Runner.test()).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import amd_mmaction  # noqa: E402,F401
from mmengine.config import DictAction  # noqa: E402

from amd_mmaction.benchmark.zoo import (UnsupportedConfig, markdown_table, metafile,
                                        zoo_row)  # noqa: E402
from amd_mmaction.engine.cli import (add_force_argument, atomic_output,  # noqa: E402
                                     check_output, run_main)
from amd_mmaction.weights.io import add_trust_argument, trust_checkpoints  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('configs', nargs='+')
    p.add_argument('--checkpoints', nargs='*', default=[], metavar='CONFIG=CKPT')
    p.add_argument('--eval', action='store_true', help='run the test set for top-1')
    p.add_argument('--no-speed', action='store_true', help='skip the clips/s measurement')
    p.add_argument('--speed-iters', type=int, default=3, help='timed runs (best is kept)')
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--out-md', default='model_zoo.md')
    p.add_argument('--out-yaml', default='metafile.yml')
    p.add_argument('--work-dir', default='work_dirs/model_zoo')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    add_trust_argument(p)
    add_force_argument(p)
    args = p.parse_args(argv)
    trust_checkpoints(args.trust_checkpoint)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    ckpts = {}
    for item in args.checkpoints:
        if '=' not in item:
            p.error(f'--checkpoints takes CONFIG=CKPT pairs, got {item!r}')
        cfg, ckpt = item.split('=', 1)
        if not osp.isfile(ckpt):
            p.error(f'checkpoint {ckpt} (for {cfg}) does not exist')
        ckpts[osp.normpath(cfg)] = ckpt
    unknown = set(ckpts) - {osp.normpath(c) for c in args.configs}
    if unknown:
        p.error(f'--checkpoints names configs not in the list: {sorted(unknown)}')
    if osp.realpath(args.out_md) == osp.realpath(args.out_yaml):
        p.error(f'--out-md and --out-yaml are the same file: {args.out_md}')
    # never over a config or checkpoint, nor over existing files without --force
    for out, what in ((args.out_md, '--out-md'), (args.out_yaml, '--out-yaml')):
        check_output(out, list(args.configs) + list(ckpts.values()), args.force, what=what)
    rows = []
    for cfg in args.configs:
        if osp.basename(cfg).startswith('_'):
            print(f'skipped {cfg}: a _base_ fragment')
            continue
        try:
            row = zoo_row(cfg, ckpts.get(osp.normpath(cfg)), args.eval,
                          0 if args.no_speed else args.speed_iters,
                          work_dir=args.work_dir, cfg_options=args.cfg_options)
        except UnsupportedConfig as e:
            print(f'skipped {e}')
            continue
        print(f'{row["name"]}: {row["params"] / 1e6:.2f} M params, '
              f'{row["flops"] / 1e9:.2f} GFLOPs, {row["views"]} views', flush=True)
        rows.append(row)
    table = markdown_table(rows, link_from=osp.dirname(osp.abspath(args.out_md)))
    for out, text in ((args.out_md, table), (args.out_yaml, metafile(rows))):
        with atomic_output(out) as tmp, open(tmp, 'w') as f:
            f.write(text)
    print(f'wrote {args.out_md} and {args.out_yaml}')


if __name__ == '__main__':
    run_main(main)
