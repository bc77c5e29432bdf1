"""Step benchmark of a pre-training config: params, FLOPs per component,
step time, clips/s, memory and achieved FLOP/s as a fraction of this
machine's matmul peak (measured in the same run), AMD beside its plain
VideoMAE student.

    python tools/benchmark_step.py configs/pretrain/amd_vit-s_vit-b-teacher_16x224_k400.py \
        --clips 1 2 --threads 2
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import amd_mmaction  # noqa: E402,F401
from mmengine.config import Config, DictAction  # noqa: E402

from amd_mmaction.benchmark import benchmark_config, format_report  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--clips', type=int, nargs='+', default=[1],
                   help='clips (masked views) per step; one run per value')
    p.add_argument('--device', default='cpu')
    p.add_argument('--dtype', default='fp32', choices=['fp32', 'bf16', 'fp16'])
    p.add_argument('--teacher-dtype', choices=['fp32', 'bf16', 'fp16'],
                   help='teacher autocast dtype (default: --dtype)')
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--clock', default='wall', choices=['wall', 'cpu'],
                   help="cpu: this process's CPU seconds (use with --threads 1 on a "
                        'shared machine)')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--iters', type=int, default=3, help='timed repeats (best is reported)')
    p.add_argument('--no-components', action='store_true')
    p.add_argument('--no-baseline', action='store_true',
                   help='skip the plain VideoMAE student')
    p.add_argument('--json', help='also write the results to this file')
    p.add_argument('--ablation', action='store_true',
                   help='instead: time each fast-path choice against the plain way '
                        '(alternately, scaled to one step)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = p.parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    if args.ablation:
        return ablation(cfg, args)
    results = []
    for clips in args.clips:
        out = benchmark_config(cfg, clips, args.device, args.dtype, args.warmup,
                               args.iters, not args.no_components,
                               not args.no_baseline, args.threads, args.teacher_dtype,
                               args.clock)
        print(format_report(out, osp.basename(args.config)), flush=True)
        results.append(out)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1, default=str)


def ablation(cfg, args):
    import torch
    from amd_mmaction.benchmark.ablation import ablate
    from amd_mmaction.benchmark.step import build_model, mask_setting
    from amd_mmaction.benchmark.timing import synthetic_batch
    if args.threads:
        torch.set_num_threads(args.threads)
    model, note = build_model(cfg)
    if model.teacher is None:
        raise SystemExit(f'{args.config}: the ablation needs a config with a teacher')
    masks = mask_setting(cfg)
    for clips in args.clips:
        x, samples = synthetic_batch(model.train(), clips, masks['student_ratio'],
                                     masks['teacher_ratio'], masks['mode'])
        print(f'# {osp.basename(args.config)} clips={clips} threads='
              f'{torch.get_num_threads()} clock={args.clock} {note}')
        print('| choice | plain (ms/step) | fast (ms/step) | saved (ms/step) |')
        print('|---|---:|---:|---:|')
        for name, r in ablate(model, x, samples, args.iters, args.clock).items():
            mem = ''
            if 'plain_saved_bytes' in r:
                mem = (f' (activations {r["plain_saved_bytes"] / 2 ** 20:.0f} -> '
                       f'{r["fast_saved_bytes"] / 2 ** 20:.0f} MiB)')
            print(f'| {name}{mem} | {r["plain"] * 1e3:.1f} | {r["fast"] * 1e3:.1f} '
                  f'| {(r["plain"] - r["fast"]) * 1e3:.1f} |', flush=True)


if __name__ == '__main__':
    main()
