"""Export a student (pre-training checkpoint of this project or of the
official VideoMAE / AMD, or a fine-tuned mmaction2 Recognizer3D checkpoint)
as a Hugging Face transformers VideoMAE folder: config.json +
model.safetensors, no pickle.

    python tools/export_hf.py SRC OUT_DIR [--num-frames 16] [--img-size 224]
        [--num-heads 12] [--norm-eps 1e-6] [--labels classes.txt]
        [--trust-checkpoint SRC] [--force]

Heads, clip size and norm eps default to the config saved in SRC; heads
must be given for checkpoints without one. --labels: one class name per
line (fine-tuned SRC), written as id2label.

    from transformers import VideoMAEModel, VideoMAEForVideoClassification
    VideoMAEModel.from_pretrained(OUT_DIR)                    # pre-trained
    VideoMAEForVideoClassification.from_pretrained(OUT_DIR)   # fine-tuned
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import amd_mmaction  # noqa: E402,F401  (patches the stack, registers modules)
from amd_mmaction.weights.hf_export import export_hf  # noqa: E402
from amd_mmaction.weights.io import add_trust_argument, trust_checkpoints  # noqa: E402
from amd_mmaction.engine.cli import (add_force_argument, atomic_output,  # noqa: E402
                                     check_output, run_main)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('src', help='pre-training or fine-tuned checkpoint')
    p.add_argument('out_dir', help='folder for config.json + model.safetensors')
    p.add_argument('--num-frames', type=int)
    p.add_argument('--img-size', type=int)
    p.add_argument('--num-heads', type=int)
    p.add_argument('--norm-eps', type=float)
    p.add_argument('--labels', help='text file, one class name per line')
    add_trust_argument(p)
    add_force_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    trust_checkpoints(args.trust_checkpoint)
    try:  # never over SRC or the labels, nor over existing files without --force
        check_output(args.out_dir, [args.src, args.labels], args.force,
                     files=['config.json', 'model.safetensors'])
        with atomic_output(args.out_dir, folder=True) as tmp:
            out = export_hf(args.src, tmp, num_frames=args.num_frames,
                            img_size=args.img_size, num_heads=args.num_heads,
                            norm_eps=args.norm_eps, labels=args.labels)
    except (FileNotFoundError, ValueError, OSError) as err:
        raise SystemExit(f'export failed: {err}') from err
    cfg = out['config']
    print(f"{cfg['architectures'][0]}: {cfg['hidden_size']} wide, "
          f"{cfg['num_hidden_layers']} layers, {cfg['num_attention_heads']} heads, "
          f"{cfg['num_frames']}x{cfg['image_size']}, {out['tensors']} tensors")
    print(f"wrote {osp.join(args.out_dir, 'config.json')} and model.safetensors")


if __name__ == '__main__':
    run_main(main)
