"""Export a pre-training checkpoint (this project's AMD / VideoMAE runs, or
the official VideoMAE / AMD releases) to an mmaction2 Recognizer3D +
VisionTransformer checkpoint for ``load_from``.

    python tools/export_checkpoint.py PRETRAIN.pth OUT.pth \
        [--num-frames 16] [--img-size 224] [--num-heads 12] \
        [--fc-norm-from-norm] [--no-strict] [--trust-checkpoint PRETRAIN.pth]

Prints what was carried over, rebuilt (position table), freshly
initialised (fc_norm) and dropped. Decoder, aligner/generator and teacher
weights are never written.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import amd_mmaction  # noqa: E402,F401  (patches the stack, registers modules)
from amd_mmaction.weights.io import add_trust_argument, trust_checkpoints  # noqa: E402
from amd_mmaction.weights import export_checkpoint  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('src', help='pre-training checkpoint')
    p.add_argument('dst', help='output checkpoint (backbone.* keys)')
    p.add_argument('--num-frames', type=int, default=16,
                   help='frames per clip the fine-tuned model sees')
    p.add_argument('--img-size', type=int, default=224)
    p.add_argument('--num-heads', type=int,
                   help='heads of the target backbone; checked against the '
                        "checkpoint's own config (meta.cfg / args) and the width")
    p.add_argument('--no-mean-pooling', action='store_true',
                   help='target keeps the final norm instead of fc_norm')
    p.add_argument('--fc-norm-from-norm', action='store_true',
                   help='initialise fc_norm from the pre-training final norm '
                        '(default: fresh, as VideoMAE fine-tuning)')
    p.add_argument('--no-strict', action='store_true',
                   help='drop checkpoint weights the target has no place for')
    add_trust_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    trust_checkpoints(args.trust_checkpoint)
    backbone = {}
    if args.num_heads:
        backbone['num_heads'] = args.num_heads
    if args.no_mean_pooling:
        backbone['use_mean_pooling'] = False
    try:
        out = export_checkpoint(args.src, args.dst, num_frames=args.num_frames,
                                img_size=args.img_size,
                                fc_norm_from_norm=args.fc_norm_from_norm,
                                strict=not args.no_strict, **backbone)
    except (FileNotFoundError, ValueError) as err:  # CheckpointMismatch too
        raise SystemExit(f'export failed: {err}') from err
    print(f'backbone: {out["backbone"]} (num_heads: {out["num_heads_from"]})')
    print(f'carried over: {len(out["carried"])} tensors')
    print(f'rebuilt for {args.num_frames}x{args.img_size}: {out["rebuilt"]}')
    print(f'freshly initialised: {out["fresh"]}')
    print(f'dropped: {out["dropped"] + out["unexpected"]}')
    print(f'wrote {args.dst}')
    return out


if __name__ == '__main__':
    main()
