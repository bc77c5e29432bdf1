"""Draw what a pre-trained student sees and rebuilds for one video.

    python tools/visualize_reconstruction.py CONFIG CHECKPOINT VIDEO --out grid.png
        [--seed 0] [--scale 3] [--trust-checkpoint CHECKPOINT] [--force]

Rows: input frames, the student's visible tokens, the teacher-only (diff)
tokens, the tokens masked from the student, and the reconstruction
(predicted tubelets un-normalised with each tubelet's own mean/std, visible
tokens pasted from the input). Masks follow the config's AsymmetricTubeMask
with ``--seed``; frames are sampled as in training, centre-cropped.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import amd_mmaction  # noqa: E402,F401
from amd_mmaction.weights.io import add_trust_argument, trust_checkpoints  # noqa: E402
from amd_mmaction.visualization import reconstruction_png  # noqa: E402
from amd_mmaction.engine.cli import (add_force_argument, atomic_output,  # noqa: E402
                                     check_output, run_main)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('video')
    p.add_argument('--out', default='reconstruction.png')
    p.add_argument('--seed', type=int, default=0, help='mask seed')
    p.add_argument('--scale', type=int, default=3, help='pixel zoom of each frame')
    add_trust_argument(p)
    add_force_argument(p)
    args = p.parse_args(argv)
    trust_checkpoints(args.trust_checkpoint)
    # never over an input, nor over an existing file without --force; written atomically
    check_output(args.out, [args.config, args.checkpoint, args.video], args.force)
    with atomic_output(args.out) as tmp:
        image = reconstruction_png(args.config, args.checkpoint, args.video, tmp,
                                   seed=args.seed, scale=args.scale)
    print(f'wrote {args.out} ({image.shape[1]}x{image.shape[0]})')


if __name__ == '__main__':
    run_main(main)
