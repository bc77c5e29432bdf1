"""Plot loss terms (and the learning rate) from mmengine training logs.

    python tools/plot_loss_curves.py WORK_DIR_OR_SCALARS_JSON [...] --out curves.png
        [--keys loss loss_recon ...] [--title T] [--width 8 --height 4.5 --dpi 100]
        [--force]

Reads ``vis_data/scalars.json`` of every run under a work dir (a resumed
run continues the curve). mmaction2's tools/analysis_tools/analyze_logs.py
expects the older per-epoch json log layout (``mode``/``epoch`` records)
and seaborn, so this reads mmengine's per-iteration scalars instead.
"""
import argparse
import glob
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from amd_mmaction.visualization import plot_loss_curves  # noqa: E402
from amd_mmaction.engine.cli import (add_force_argument, atomic_output,  # noqa: E402
                                     check_output, run_main)


def read_files(logs):
    """The logs and, for a work dir or run folder, the scalars.json files
    under it: what the plot reads, which --out must never replace."""
    files = list(logs)
    for p in logs:
        if osp.isdir(p):
            files += glob.glob(osp.join(glob.escape(p), 'vis_data', 'scalars.json'))
            files += glob.glob(osp.join(glob.escape(p), '*', 'vis_data', 'scalars.json'))
    return files


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('logs', nargs='+')
    p.add_argument('--out', default='loss_curves.png')
    p.add_argument('--keys', nargs='+', help="default: every 'loss*' term")
    p.add_argument('--title')
    p.add_argument('--width', type=float, default=8.0)
    p.add_argument('--height', type=float, default=4.5)
    p.add_argument('--dpi', type=int, default=100)
    add_force_argument(p)
    args = p.parse_args(argv)
    # never over a log, nor over an existing file without --force; written atomically
    check_output(args.out, read_files(args.logs), args.force)
    with atomic_output(args.out) as tmp:
        plot_loss_curves(args.logs, tmp, args.keys, (args.width, args.height),
                         args.dpi, args.title)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    run_main(main)
