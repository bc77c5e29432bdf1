"""Export a pre-training checkpoint (this project's AMD / VideoMAE runs, or
the official VideoMAE / AMD releases) to an mmaction2 Recognizer3D +
VisionTransformer checkpoint for ``load_from``.

    python tools/export_checkpoint.py PRETRAIN.pth OUT.pth \
        [--num-frames 16] [--img-size 224] [--num-heads 12] \
        [--fc-norm-from-norm] [--no-strict] [--drop-classifier]
        [--trust-checkpoint PRETRAIN.pth] [--force]

Prints what was carried over, kept, rebuilt (position table), newly
initialised (fc_norm) and dropped: every tensor of the source is in one of
them. Decoder, aligner/generator and teacher weights are never written. A
fine-tuned checkpoint exported again (e.g. for another clip length) keeps
its trained fc_norm and its classifier (``cls_head.*``); ``--drop-classifier``
leaves the classifier behind (to fine-tune on another label set).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import amd_mmaction  # noqa: E402,F401  (patches the stack, registers modules)
from amd_mmaction.weights.io import add_trust_argument, trust_checkpoints  # noqa: E402
from amd_mmaction.weights import export_checkpoint  # noqa: E402
from amd_mmaction.weights.mmaction import describe_report  # noqa: E402
from amd_mmaction.engine.cli import (add_force_argument, atomic_output,  # noqa: E402
                                     check_output, run_main)


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
    p.add_argument('--drop-classifier', action='store_true',
                   help="a fine-tuned checkpoint's classifier (cls_head.*) is not written "
                        '(to fine-tune on another label set); its trained fc_norm is '
                        'kept either way')
    add_trust_argument(p)
    add_force_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    trust_checkpoints(args.trust_checkpoint)
    backbone = {}
    if args.num_heads:
        backbone['num_heads'] = args.num_heads
    if args.no_mean_pooling:
        backbone['use_mean_pooling'] = False
    try:  # never over SRC, nor over an existing DST without --force; DST written atomically
        check_output(args.dst, [args.src], args.force)
        with atomic_output(args.dst) as tmp:
            out = export_checkpoint(args.src, tmp, num_frames=args.num_frames,
                                    img_size=args.img_size,
                                    fc_norm_from_norm=args.fc_norm_from_norm,
                                    strict=not args.no_strict,
                                    keep_classifier=not args.drop_classifier, **backbone)
        out['path'] = args.dst
    except (FileNotFoundError, ValueError) as err:  # CheckpointMismatch, OutputRefused too
        raise SystemExit(f'export failed: {err}') from err
    print(f'backbone: {out["backbone"]} (num_heads: {out["num_heads_from"]})')
    for line in describe_report(out, f'{args.num_frames}x{args.img_size}'):
        print(line)
    print(f'wrote {args.dst}')
    return out


if __name__ == '__main__':
    run_main(main)
