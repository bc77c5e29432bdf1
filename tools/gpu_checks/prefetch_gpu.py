"""PrefetchLoader on a CUDA GPU: correctness of its stream hand-over and the
time it hides. Self-contained (torch only).

    python tools/gpu_checks/prefetch_gpu.py [--batches 60] [--json out.json]

1. Correctness: the producer thread copies pinned host batches of known
   values to the GPU (non_blocking, on its own stream) while the consumer
   runs long matmuls on the default stream and then checks every element.
   A missing wait on the producer's event would let the consumer read a
   buffer before its copy finished. 200 batches, each a different value.
2. Overlap: a collate that takes ``--decode-ms`` of host time (as a decode
   does) and a GPU step of about the same length; seconds per batch with
   prefetch=0 (the DataLoader's collate runs in the training thread) and
   prefetch=2.
Exit 0 when every batch was intact.
"""
import argparse
import json
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--batches', type=int, default=60)
    p.add_argument('--decode-ms', type=float, default=20.0)
    p.add_argument('--json', default=None)
    p.add_argument('--device', default='cuda', help='cpu: smoke test of this script')
    args = p.parse_args()
    import torch
    from torch.utils.data import DataLoader

    from amd_mmaction.engine.prefetch import PrefetchLoader
    if args.device == 'cuda':
        if not torch.cuda.is_available():
            print('FAIL: no CUDA device')
            return 1
        torch.cuda.init()
    dev = torch.device(args.device)
    cuda = dev.type == 'cuda'
    # GPU sizes: a batch of 16 clips 16x224 uint8, a 4096^2 bf16 matmul, an
    # 8x1024^2 step input; tiny ones for the CPU smoke test
    numel, busy, step_shape = ((16 * 3 * 16 * 224 * 224, 4096, (8, 1024, 1024)) if cuda
                               else (1000, 64, (1, 256, 256)))

    def pinned(t):
        return t.pin_memory() if cuda else t

    def collate_known(items):
        host = pinned(torch.full((numel,), items[0] % 251, dtype=torch.uint8))
        return items[0], host.to(dev, non_blocking=True)

    w = torch.randn(busy, busy, device=dev, dtype=torch.bfloat16)
    bad = 0
    for i, (k, x) in enumerate(PrefetchLoader(DataLoader(list(range(200)), batch_size=1,
                                                         collate_fn=collate_known), 2)):
        # read x at once (a missing wait would see a copy in flight or a
        # reused block's old values), then keep the GPU busy so the producer
        # runs ahead
        if not bool((x == k % 251).all()) or k != i:
            bad += 1
        for _ in range(8):
            w = (w @ w).clamp_(-1, 1)
    print(f'stream hand-over: {200 - bad}/200 batches intact')

    host = pinned(torch.randn(step_shape))

    def collate_slow(items):
        time.sleep(args.decode_ms / 1e3)  # host-side decode time (GIL released)
        return host.to(dev, non_blocking=True)

    def gpu_step(x, reps):
        y = x
        for _ in range(reps):
            y = torch.tanh(y @ x)
        return float(y[0, 0, 0])  # the loss read for logging: one sync per step

    def step_ms(reps):
        x0 = host.to(dev)
        gpu_step(x0, reps)
        t0 = time.perf_counter()
        for _ in range(5):
            gpu_step(x0, reps)
        return (time.perf_counter() - t0) / 5 * 1e3

    reps = max(1, round(args.decode_ms / step_ms(4) * 4))  # a step as long as the decode
    gpu_ms = step_ms(reps)
    loader = DataLoader(list(range(args.batches)), batch_size=1, collate_fn=collate_slow)
    per_batch = {}
    for depth in (0, 2):
        it = PrefetchLoader(loader, depth) if depth else loader
        t0 = time.perf_counter()
        for x in it:
            gpu_step(x, reps)
        per_batch[depth] = (time.perf_counter() - t0) / args.batches * 1e3
    print(f'host decode {args.decode_ms:.0f} ms + GPU step {gpu_ms:.1f} ms per batch: '
          f'prefetch=0 {per_batch[0]:.1f} ms, prefetch=2 {per_batch[2]:.1f} ms per batch')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(intact=200 - bad, decode_ms=args.decode_ms, gpu_step_ms=gpu_ms,
                           ms_per_batch={str(k): v for k, v in per_batch.items()},
                           device=torch.cuda.get_device_name(0) if cuda else 'cpu'),
                      f, indent=1)
    print('PASS' if bad == 0 else 'FAIL')
    return 0 if bad == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
