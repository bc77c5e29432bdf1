"""Recognise one video: the top-k classes and scores of a fine-tuned
checkpoint (mmaction2's ``demo/demo.py`` interface and output).

    python demo/demo.py CONFIG CHECKPOINT VIDEO LABEL_FILE [--top-k 5] [--device cpu]
        [--cfg-options k=v ...] [--no-strict] [--trust-checkpoint CHECKPOINT]

LABEL_FILE: one class name per line, in label order (mmaction2's label
maps), or a JSON list of names (``classes.json`` of
``tools/make_demo_data.py``). The video goes through the config's
``test_pipeline`` (all its clips / crops, scores averaged by the model).
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import amd_mmaction  # noqa: E402,F401  (patches the stack, registers modules)
from amd_mmaction.weights.io import add_trust_argument, trust_checkpoints  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.runner import load_checkpoint  # noqa: E402

from mmaction.apis import inference_recognizer, init_recognizer  # noqa: E402

from amd_mmaction.engine.cli import CommandError, run_main  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Recognise the action in one video')
    p.add_argument('config', help='test config file path')
    p.add_argument('checkpoint', help='fine-tuned checkpoint file')
    p.add_argument('video', help='video file')
    p.add_argument('label', help='label file: one class name per line, or a JSON list')
    p.add_argument('--top-k', type=int, default=5, help='how many classes to print')
    p.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu',
                   help='torch device (default: cuda:0, or cpu without CUDA)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    p.add_argument('--no-strict', action='store_true',
                   help='load a checkpoint that misses or adds weights (warn only)')
    add_trust_argument(p)
    args = p.parse_args(argv)
    for what in ('checkpoint', 'video', 'label'):
        if not osp.isfile(getattr(args, what)):
            p.error(f'{what} {getattr(args, what)!r} does not exist')
    if args.top_k < 1:
        p.error(f'--top-k {args.top_k}: must be at least 1')
    return args


def read_labels(path):
    with open(path) as f:
        text = f.read()
    if path.endswith('.json'):
        names = json.loads(text)
        if not isinstance(names, list):
            raise ValueError(f'label file {path}: expected a JSON list of class '
                             f'names, got {type(names).__name__}')
        return [str(n) for n in names]
    return [line.strip() for line in text.splitlines() if line.strip()]


def recognise(args):
    """[(class name, score)] of the ``top_k`` best classes, best first."""
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    # weights come from CHECKPOINT only (not a backbone init_cfg), through
    # mmengine's load path, strict: a missing weight must not pass silently
    model = init_recognizer(cfg, None, device='cpu')
    try:
        load_checkpoint(model, args.checkpoint, map_location='cpu', strict=not args.no_strict)
    except RuntimeError as err:
        if 'do not match' not in str(err):  # mmengine's strict key check
            raise
        raise CommandError(
            f'checkpoint {args.checkpoint!r} does not fit the model of {args.config}: {err}'
            '\nA pre-training checkpoint must be exported (tools/export_checkpoint.py) and '
            'fine-tuned first; --no-strict runs anyway.') from err
    model.to(args.device)
    labels = read_labels(args.label)
    scores = inference_recognizer(model, args.video).pred_score.float().cpu()
    if len(labels) != scores.numel():
        raise CommandError(f'label file {args.label} has {len(labels)} names but the model '
                         f'of {args.config} scores {scores.numel()} classes')
    top = scores.topk(min(args.top_k, scores.numel()))
    return [(labels[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())]


def main(argv=None):
    args = parse_args(argv)
    trust_checkpoints(args.trust_checkpoint)
    results = recognise(args)
    print(f'The top-{len(results)} labels with corresponding scores are:')
    for name, score in results:
        print(f'{name}:  {score:.4f}')
    return results


if __name__ == '__main__':
    run_main(main)
