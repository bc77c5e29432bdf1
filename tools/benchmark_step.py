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
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--iters', type=int, default=3, help='timed repeats (best is reported)')
    p.add_argument('--no-components', action='store_true')
    p.add_argument('--no-baseline', action='store_true',
                   help='skip the plain VideoMAE student')
    p.add_argument('--json', help='also write the results to this file')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = p.parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    results = []
    for clips in args.clips:
        out = benchmark_config(cfg, clips, args.device, args.dtype, args.warmup,
                               args.iters, not args.no_components,
                               not args.no_baseline, args.threads, args.teacher_dtype)
        print(format_report(out, osp.basename(args.config)), flush=True)
        results.append(out)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1, default=str)


if __name__ == '__main__':
    main()
