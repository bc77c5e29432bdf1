"""Attention at the shapes of an AMD step: fused SDPA against explicit
softmax(QK^T)V, forward and forward+backward, and SDPA with the queries split
into chunks (more units of work for the CPU flash-attention backward, which
parallelises over batch x heads). Prints ms and GFLOP/s per layer.

    python tools/benchmark_attention.py --threads 2
    python tools/benchmark_attention.py --shape 1,3,1568,64 --chunks 1 2 4

Default shapes: the ViT-S / ViT-B-teacher config at 16x224, one clip: decoder
(3 heads on 1568 tokens; also at 2 clips), teacher and generators (12 heads
on 392), student encoder (6 heads on 160).

Read the explicit rows with care: in isolation, at 2 threads, explicit
attention can edge out SDPA, but inside the whole step (allocator and cache
state of a real step) SDPA was ahead and holds no n^2 scores; the step-level
comparison is ``tools/benchmark_step.py CONFIG --ablation``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from amd_mmaction.benchmark.timing import best_time  # noqa: E402

DEFAULT_SHAPES = {'decoder': (1, 3, 1568, 64), 'decoder, 2 clips': (2, 3, 1568, 64),
                  'teacher / generators': (1, 12, 392, 64), 'encoder': (1, 6, 160, 64)}


def explicit(q, k, v):
    return ((q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)).softmax(-1) @ v


def query_chunks(q, k, v, chunks):
    """SDPA with the queries of each head split into ``chunks`` groups that
    see all keys: the same result, ``chunks`` times the units of work."""
    b, h, n, d = q.shape
    m = k.shape[2]
    qc = q.reshape(b, h * chunks, n // chunks, d)
    kc, vc = (t.unsqueeze(2).expand(b, h, chunks, m, d).reshape(b, h * chunks, m, d)
              for t in (k, v))
    return F.scaled_dot_product_attention(qc, kc, vc).reshape(b, h, n, d)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--shape', nargs='*', default=None, metavar='B,H,N,D',
                   help='batch, heads, tokens, head dims (default: the step\'s shapes)')
    p.add_argument('--chunks', type=int, nargs='*', default=[2])
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--iters', type=int, default=7)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = ({s: tuple(int(x) for x in s.split(',')) for s in args.shape} if args.shape
              else DEFAULT_SHAPES)
    print(f'threads {torch.get_num_threads()}, torch {torch.__version__}, best of {args.iters}')
    print(f'{"shape":<40} {"way":<18} {"fwd ms":>8} {"GFLOP/s":>8} {"fwd+bwd ms":>11} {"GFLOP/s":>8}')
    for name, (b, h, n, d) in shapes.items():
        q, k, v = (torch.randn(b, h, n, d, requires_grad=True) for _ in range(3))
        flops = 4 * b * h * n * n * d  # QK^T and AV
        ways = {'sdpa': F.scaled_dot_product_attention, 'explicit': explicit}
        for c in args.chunks:
            if c > 1 and n % c == 0:
                ways[f'sdpa, {c} q-chunks'] = lambda q, k, v, c=c: query_chunks(q, k, v, c)
        ref = F.scaled_dot_product_attention(q, k, v).detach()
        for way, fn in ways.items():
            err = (fn(q, k, v).detach() - ref).abs().max().item()
            if err > 1e-4:
                raise AssertionError(f'{way} differs from SDPA by {err}')

            def fwd():
                with torch.no_grad():
                    fn(q, k, v)

            def fwd_bwd():
                fn(q, k, v).sum().backward()
            tf = best_time(fwd, 1, args.iters)['best']
            tb = best_time(fwd_bwd, 1, args.iters)['best']
            print(f'{name + " " + str((b, h, n, d)):<40} {way:<18} {tf * 1e3:8.1f} '
                  f'{flops / tf / 1e9:8.0f} {tb * 1e3:11.1f} {3 * flops / tb / 1e9:8.0f}')


if __name__ == '__main__':
    main()
