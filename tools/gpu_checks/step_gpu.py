"""AMD step speed on a lent CUDA GPU, self-contained (no internet needed).

    python tools/gpu_checks/step_gpu.py [--clips 32] [--json step_gpu.json]

ViT-B student + ViT-L teacher (taps 12, 24) at 16x224, masks 90%/75%, the
whole step under bf16 autocast (teacher included), random teacher weights
(same FLOPs and speed as the real checkpoint). Prints per-component and
whole-step achieved FLOP/s as MFU against the bf16 matmul peak measured in
the same run (8192^3) and against the card's nominal dense bf16 peak,
clips/s, peak memory, and the AMD / plain-VideoMAE (ViT-B) step-time ratio.
Exit 0 when every step ran with finite losses and the figures were printed.
Should take about a minute on an H100 (well under 3).
"""
import argparse
import json
import math
import os.path as osp
import sys
import time
import warnings

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

# Dense bf16 tensor-core peaks from the vendor data sheets (TFLOP/s).
NOMINAL_BF16 = {'H100 PCIe': 756.0, 'H100 NVL': 835.0, 'H100': 989.4, 'H200': 989.4,
                'A100': 312.0, 'L40S': 362.0}


def nominal_peak(name):
    for key in sorted(NOMINAL_BF16, key=len, reverse=True):
        if key in name:
            return NOMINAL_BF16[key] * 1e12
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--config', default=osp.join(
        ROOT, 'configs/pretrain/amd_vit-b_vit-l-teacher_16x224_k400.py'))
    p.add_argument('--clips', type=int, default=32, help='clips (masked views) per step')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--json', default=None)
    p.add_argument('--device', default='cuda', help='cpu: smoke test of this script')
    p.add_argument('--dtype', default='bf16', choices=['bf16', 'fp32'])
    args = p.parse_args()
    t_start = time.time()
    warnings.filterwarnings('ignore')
    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('FAIL: no CUDA device visible to torch', torch.__version__)
        return 1
    import amd_mmaction  # noqa: F401
    from mmengine.config import Config
    from amd_mmaction.benchmark import benchmark_config, format_report

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    cfg = Config.fromfile(args.config)
    name = torch.cuda.get_device_name(0) if args.device == 'cuda' else 'cpu'
    print(f'device: {name}, torch {torch.__version__}, clips/step {args.clips}', flush=True)
    out = benchmark_config(cfg, clips=args.clips, device=args.device, dtype=args.dtype,
                           warmup=args.warmup, iters=args.iters)
    print(format_report(out, osp.basename(args.config)))
    nominal = nominal_peak(name)
    ok = True
    for key in ('amd', 'videomae'):
        r = out[key]
        line = (f'{key}: {r["clips_per_s"]:.1f} clips/s, MFU {r["peak_fraction"]:.1%} of the '
                f'measured {args.dtype} matmul peak ({out["matmul_peak"] / 1e12:.0f} TFLOP/s)')
        if nominal:
            line += f', {r["flops_per_s"] / nominal:.1%} of nominal {nominal / 1e12:.0f} TFLOP/s'
        print(line)
        if not math.isfinite(r['loss']):
            print(f'FAIL: {key} loss is {r["loss"]}')
        ok &= math.isfinite(r['loss']) and r['flops_per_s'] > 0
    print(f'AMD / VideoMAE step time: {out["time_ratio"]:.2f}x')
    print(f'wall time: {time.time() - t_start:.0f} s')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(out, nominal_peak=nominal), f, indent=1, default=str)
    print('PASS' if ok else 'FAIL')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
