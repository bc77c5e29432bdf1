"""DALI GPU (NVDEC) check, self-contained, for a lent CUDA machine.

    python tools/gpu_checks/dali_gpu.py            # exit 0: all checks passed, 1: a check failed
    python tools/gpu_checks/dali_gpu.py --device cpu   # the same on DALI's CPU decoder (VP9 only)

1. writes H.264 .mp4 and VP9 .webm clips (amd_mmaction.data.synthetic);
2. decodes chosen frame indices through the DALI GPU (``mixed``) decoder and
   compares them with decord (tolerance as tests/test_dali.py: mean |diff|
   <= 3, max <= 32, and every frame nearest to decord's frame of its index);
3. runs DALIVideoDataset + dali_collate (16 frames, stride 4, 2 views of
   multi-scale crops to 160 with flips) on the GPU and compares each view
   with decord + mmaction's Fuse on the same plan;
4. prints clips/s of that loader (NVDEC) beside decord on the same plans.
Takes well under 2 minutes on an H100.
"""
import argparse
import os.path as osp
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

MEAN_TOL, MAX_TOL = 3.0, 32


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--device', default='gpu', choices=('gpu', 'cpu'))
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--frames', type=int, default=64)
    p.add_argument('--videos', type=int, default=4, help='per codec')
    p.add_argument('--batches', type=int, default=8)
    args = p.parse_args()
    import warnings
    warnings.filterwarnings('ignore')
    import numpy as np
    import torch
    if args.device == 'gpu' and not torch.cuda.is_available():
        print('FAIL: no CUDA device')
        return 1
    import amd_mmaction  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmaction.registry import DATASETS
    from amd_mmaction.data.dali import dali_collate, decode_dali, decode_decord
    from amd_mmaction.data.synthetic import render_clip, write_video
    init_default_scope('mmaction')
    failures = []

    def close(name, a, b):
        d = (a.cpu().int() - b.int()).abs()
        ok = a.shape == b.shape and d.float().mean() <= MEAN_TOL and d.max() <= MAX_TOL
        print(f'  {name}: shape {tuple(a.shape)} mean|diff| {d.float().mean():.2f} '
              f'max {d.max().item()} {"ok" if ok else "FAIL"}')
        if not ok:
            failures.append(name)

    tmp = tempfile.mkdtemp(prefix='dali_gpu_')
    exts = ('mp4', 'webm') if args.device == 'gpu' else ('webm',)
    rng = np.random.default_rng(0)
    lines, t0 = [], time.perf_counter()
    for ext in exts:
        for i in range(args.videos):
            rel = f'{ext}_{i}.{ext}'
            write_video(osp.join(tmp, rel), render_clip(i % 6, args.frames, args.size, rng))
            lines.append(f'{rel} {i % 6}')
    with open(osp.join(tmp, 'ann.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print(f'wrote {len(lines)} clips ({args.frames}x{args.size}x{args.size}) '
          f'in {time.perf_counter() - t0:.1f}s')

    print('1. frames at given indices, DALI vs decord')
    inds = [0, 5, args.frames - 1, 17, 30, 30, 2]
    for ext in exts:
        path = osp.join(tmp, f'{ext}_0.{ext}')
        plan = dict(filename=path, frame_inds=np.asarray(inds, np.int32), clip_len=len(inds),
                    views=[dict(crop_bbox=(0, 0, args.size, args.size),
                                size=(args.size, args.size), flip=None)],
                    codec='h264' if ext == 'mp4' else 'vp9', on_bad_clip='fail')
        out = decode_dali([plan], device=args.device)[0]
        if args.device == 'gpu' and not out.is_cuda:
            failures.append('gpu output not on cuda')
        close(f'{ext} frames {inds}', out, decode_decord(plan))
        every = decode_decord(dict(plan, frame_inds=np.arange(args.frames, dtype=np.int32)))
        every = every[0].float()
        for j, i in enumerate(inds):
            dist = (every - out[0, :, j:j + 1].cpu().float()).abs().mean(dim=(0, 2, 3))
            if dist.argmin().item() != i:
                failures.append(f'{ext} frame {i} is not decord frame {i}')
                print(f'  FAIL: DALI frame for index {i} is nearest to decord '
                      f'frame {dist.argmin().item()}')

    print('2. DALIVideoDataset + dali_collate views vs decord + Fuse')
    views = [dict(type='MultiScaleCrop', input_size=160, scales=(1, 0.875, 0.75, 0.66),
                  random_crop=False, max_wh_scale_gap=1, lazy=True),
             dict(type='Resize', scale=(160, 160), keep_ratio=False, lazy=True),
             dict(type='Flip', flip_ratio=0.5, lazy=True),
             dict(type='AsymmetricTubeMask', grid=(8, 10, 10), student_ratio=0.9,
                  teacher_ratio=0.75)]
    pipeline = [dict(type='ProbeVideo'),
                dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=1),
                dict(type='DALIViews', num_views=2, transforms=views),
                dict(type='PackDALIPlan', algorithm_keys=('mask_stu', 'mask_tea'))]
    ds = DATASETS.build(dict(type='DALIVideoDataset', ann_file=osp.join(tmp, 'ann.txt'),
                             data_prefix=dict(video=tmp), pipeline=pipeline))
    items = [ds[i] for i in range(len(ds))]
    batch = dali_collate(items, device=args.device)
    if len(batch['inputs']) != len(items):
        failures.append('clips dropped from the batch')
    for item, x in zip(items, batch['inputs']):
        close(osp.basename(item['inputs']['filename']) + ' views', x,
              decode_decord(item['inputs']))

    print('3. throughput (batch of all clips, 16x stride 4, 2 views of 160)')
    if args.device == 'gpu':
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(args.batches):
        items = [ds[i] for i in range(len(ds))]
        dali_collate(items, device=args.device)
    if args.device == 'gpu':
        torch.cuda.synchronize()
    dali_cps = args.batches * len(items) / (time.perf_counter() - t)
    t = time.perf_counter()
    n = max(2, args.batches // 4)
    for _ in range(n):
        for i in range(len(ds)):
            decode_decord(ds[i]['inputs'])
    decord_cps = n * len(ds) / (time.perf_counter() - t)
    name = torch.cuda.get_device_name() if args.device == 'gpu' else 'cpu'
    print(f'| loader | clips/s ({args.size}x{args.size} source, '
          f'{"/".join(exts)}) |\n|---|---|')
    print(f'| DALI {args.device} ({name}) | {dali_cps:.1f} |')
    print(f'| decord, 1 process (same plans) | {decord_cps:.1f} |')
    if failures:
        print('FAILED:', '; '.join(failures))
        return 1
    print('ALL CHECKS PASSED')
    return 0


if __name__ == '__main__':
    sys.exit(main())
