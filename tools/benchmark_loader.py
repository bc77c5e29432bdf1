"""Clips/s of the DALI and decord loaders on the same files and transforms,
beside the training step's clips/s, so one sees whether loading keeps up.

    python tools/benchmark_loader.py                       # tiny configs, demo-like data
    python tools/benchmark_loader.py --ann data/motion/train.txt --root data/motion/videos
    python tools/benchmark_loader.py --dali-device gpu     # NVDEC, on a CUDA machine

Both loaders are built by mmengine's ``Runner.build_dataloader`` from the
configs' ``train_dataloader`` (same batch size, workers, sampling, crops,
views, masks), pointed at the same annotation file. A clip is one decoded
video; each yields ``num_views`` views. The train step is ``model.train_step``
of the decord config's model (teacher weights random: same compute) on one
real batch, on the CUDA device when there is one.
"""
import argparse
import atexit
import os.path as osp
import shutil
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--decord-config', default=osp.join(ROOT, 'configs/tiny/amd_tiny_motion.py'))
    p.add_argument('--dali-config', default=osp.join(ROOT, 'configs/tiny/amd_tiny_motion_dali.py'))
    p.add_argument('--ann', help='annotation file (default: write a synthetic set)')
    p.add_argument('--root', help='video folder of --ann')
    p.add_argument('--num-videos', type=int, default=24, help='synthetic set size')
    p.add_argument('--frames', type=int, default=48, help='synthetic clip length')
    p.add_argument('--size', type=int, default=128, help='synthetic frame size')
    p.add_argument('--ext', default='webm', choices=('webm', 'mp4', 'avi'))
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--workers', type=int, default=0)
    p.add_argument('--batches', type=int, default=4, help='batches per timed round')
    p.add_argument('--rounds', type=int, default=3, help='timed rounds per loader (median)')
    p.add_argument('--steps', type=int, default=3, help='timed train steps')
    p.add_argument('--dali-device', default='auto', choices=('auto', 'cpu', 'gpu'))
    p.add_argument('--dali-threads', type=int, default=2)
    return p.parse_args()


def loader_cfg(cfg, args, dali=False):
    dl = cfg.train_dataloader.copy()
    dl.batch_size = args.batch_size
    dl.num_workers = args.workers
    dl.persistent_workers = False
    dl.dataset.ann_file = args.ann
    dl.dataset.data_prefix = dict(video=args.root)
    if dali:
        dl.collate_fn = dict(type='dali_collate', device=args.dali_device,
                             num_threads=args.dali_threads)
    return dl


class Timer:
    """Clips/s of a loader, timed in rounds of ``batches`` batches after
    one warm-up batch (pipeline builds, worker start-up); rounds of the
    loaders alternate so that a busy machine hits both alike."""

    def __init__(self, loader):
        self.loader, self.rates = loader, []
        self.it = iter(loader)
        self.first = self._next()

    def _next(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)

    def round(self, batches):
        clips, start = 0, time.perf_counter()
        for _ in range(batches):
            clips += len(self._next()['inputs'])
        self.rates.append(clips / (time.perf_counter() - start))

    @property
    def median(self):
        return sorted(self.rates)[len(self.rates) // 2]


def time_train_step(cfg, batch, steps):
    import torch
    from mmengine.optim import build_optim_wrapper
    from mmaction.registry import MODELS
    model_cfg = cfg.model.copy()
    if model_cfg.get('teacher'):
        model_cfg.teacher.checkpoint = None
    model = MODELS.build(model_cfg)
    if torch.cuda.is_available():
        model = model.cuda()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    model.train_step(batch, optim)  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        model.train_step(batch, optim)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return steps * len(batch['inputs']) / (time.perf_counter() - start)


def main():
    args = parse_args()
    import warnings
    warnings.filterwarnings('ignore')
    import torch
    import amd_mmaction  # noqa: F401
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from amd_mmaction.data.dali import resolve_device
    from amd_mmaction.data.synthetic import make_motion_dataset
    init_default_scope('mmaction')
    MMLogger.get_instance('benchmark', log_level='WARNING')
    if not args.ann:
        tmp = tempfile.mkdtemp(prefix='bench_')
        atexit.register(shutil.rmtree, tmp, True)
        data = make_motion_dataset(tmp, num_train=args.num_videos, num_val=0,
                                   num_frames=args.frames, size=args.size,
                                   ext=args.ext, seed=0)
        args.ann, args.root = data['train'], data['root']
    dec_cfg = Config.fromfile(args.decord_config)
    dali_cfg = Config.fromfile(args.dali_config)
    timers = [Timer(Runner.build_dataloader(loader_cfg(dec_cfg, args), seed=0)),
              Timer(Runner.build_dataloader(loader_cfg(dali_cfg, args, dali=True), seed=0))]
    for _ in range(args.rounds):
        for t in timers:
            t.round(args.batches)
    batch = timers[0].first
    views = batch['inputs'][0].shape[0]
    dev = resolve_device(args.dali_device) if args.workers == 0 else 'cpu'
    rows = [('decord (mmaction2 VideoDataset)', 'cpu', timers[0].median),
            ('DALI (DALIVideoDataset + dali_collate)',
             'gpu (NVDEC)' if dev == 'gpu' else 'cpu', timers[1].median)]
    train = time_train_step(dec_cfg, batch, args.steps)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'
    shape = tuple(batch['inputs'][0].shape)
    print(f'\ndata: {args.ann} ({args.ext}); batch {args.batch_size}, '
          f'workers {args.workers}, {views} views/clip, view {shape}; {gpu}; '
          f'median of {args.rounds} rounds of {args.batches} batches')
    print('| loader | decode on | clips/s | views/s | keeps up with training |')
    print('|---|---|---|---|---|')
    for name, where, c in rows:
        print(f'| {name} | {where} | {c:.1f} | {c * views:.1f} | '
              f'{"yes" if c >= train else "no"} |')
    print(f'| train step ({osp.basename(args.decord_config)}) | '
          f'{"cuda" if torch.cuda.is_available() else "cpu"} | {train:.1f} | '
          f'{train * views:.1f} | |')


if __name__ == '__main__':
    main()
