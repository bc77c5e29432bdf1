"""The DALI data path (amd_mmaction/data/dali) on real VP9 .webm files:
frames against decord, views / masks / layout, codec routing, DDP shards,
bad-file policies, and training through mmengine's Runner.

Frame tolerance: DALI and decord decode the same VP9 stream with FFmpeg's
decoder; they differ only in the YUV 4:2:0 -> RGB conversion (chroma
upsampling and rounding). Measured on the motion clips: mean |diff| 1.4,
max 12 (of 255), 3% of values differ by more than 2. Bounds below: mean
|diff| <= 3 and max |diff| <= 32 for raw frames and for cropped / resized /
flipped views (a resize to 64x64 of a ~42-pixel crop magnifies the
conversion difference at sharp edges: measured max 19).
"""
import json
import os
import os.path as osp
import socket

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from amd_mmaction.data.dali import MISSING_REASON

# DALI is the optional [dali] extra: without it these tests are skipped,
# saying what to install (CI installs it, so there they run).
pytest.importorskip('nvidia.dali', reason=MISSING_REASON)

from amd_mmaction.data.dali import ROUTED, dali_collate, decode_dali, decode_decord  # noqa: E402
from amd_mmaction.data.probe import BadClipError  # noqa: E402
from amd_mmaction.data.synthetic import render_clip, write_video  # noqa: E402

MEAN_TOL, MAX_TOL = 3.0, 32
GRID = (4, 8, 8)


def dali_pipeline(num_views=2, flip=0.5, clip_resize=None, meta=('img_shape', 'filename'),
                  clip_len=8, interval=2):
    views = [
        dict(type='MultiScaleCrop', input_size=64, scales=(1, 0.875, 0.75, 0.66),
             random_crop=False, max_wh_scale_gap=1, lazy=True),
        dict(type='Resize', scale=(64, 64), keep_ratio=False, lazy=True),
        dict(type='Flip', flip_ratio=flip, lazy=True),
        dict(type='AsymmetricTubeMask', grid=GRID, student_ratio=0.9, teacher_ratio=0.75),
    ]
    pipe = [dict(type='ProbeVideo'),
            dict(type='SampleFrames', clip_len=clip_len, frame_interval=interval, num_clips=1)]
    if clip_resize:
        pipe.append(dict(type='Resize', scale=clip_resize, lazy=True))
    return pipe + [dict(type='DALIViews', num_views=num_views, transforms=views),
                   dict(type='PackDALIPlan', algorithm_keys=('mask_stu', 'mask_tea'),
                        meta_keys=meta)]


def build(ann, root, pipeline=None, **kw):
    from mmaction.registry import DATASETS
    init_default_scope('mmaction')
    return DATASETS.build(dict(type='DALIVideoDataset', ann_file=ann,
                               data_prefix=dict(video=root),
                               pipeline=pipeline or dali_pipeline(), **kw))


def assert_close(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype == torch.uint8
    d = (a.int() - b.int()).abs()
    assert d.float().mean() <= MEAN_TOL and d.max() <= MAX_TOL, \
        (d.float().mean().item(), d.max().item())


def whole_frames(path, inds, size=64):
    return dict(filename=path, frame_inds=np.asarray(inds, np.int32), clip_len=len(inds),
                views=[dict(crop_bbox=(0, 0, size, size), size=(size, size), flip=None)],
                codec='vp9', on_bad_clip='fail')


def test_raw_frames_match_decord(motion_data):
    path = osp.join(motion_data['root'], 'train', 'train_00000.webm')
    inds = [5, 0, 23, 7, 7, 12, 1]  # any order, repeats, last frame
    dali = decode_dali([whole_frames(path, inds)])[0]
    ref = decode_decord(whole_frames(path, inds))
    assert dali.shape == (1, 3, len(inds), 64, 64)
    assert_close(dali, ref)
    # the right frames, not neighbours: each DALI frame is nearest to decord's
    everything = decode_decord(whole_frames(path, range(24)))[0].float()
    for j, i in enumerate(inds):
        dist = (everything - dali[0, :, j:j + 1].float()).abs().mean(dim=(0, 2, 3))
        assert dist.argmin().item() == i


def test_views_layout_masks_match_decord(motion_data):
    ds = build(motion_data['train'], motion_data['root'],
               dali_pipeline(num_views=3, flip=0.5, clip_resize=(-1, 80)))
    items = [ds[i] for i in range(4)]
    batch = dali_collate(items, device='cpu')
    assert len(batch['inputs']) == 4
    flips = 0
    for i, (x, item, sample) in enumerate(zip(batch['inputs'], items, batch['data_samples'])):
        plan = item['inputs']
        assert x.shape == (3, 3, 8, 64, 64) and x.dtype == torch.uint8  # V, C, T, H, W
        assert_close(x, decode_decord(plan))
        flips += sum(v['flip'] is not None for v in plan['views'])
        assert sample.metainfo['filename'] == plan['filename']
        assert sample.gt_label.item() == ds.get_data_info(i)['label']
        stu, tea = np.asarray(sample.mask_stu), np.asarray(sample.mask_tea)
        assert stu.shape == tea.shape == (3, 256) and stu.dtype == bool
        assert (stu.sum(1) == 4 * int(0.9 * 64)).all() and (tea.sum(1) == 4 * int(0.75 * 64)).all()
        assert not (tea & ~stu).any()  # student sees a subset of what the teacher sees
        assert (stu.reshape(3, 4, 64) == stu.reshape(3, 4, 64)[:, :1]).all()  # tubes
    assert 0 < flips < 12  # flip_ratio 0.5 over 12 views


def test_h264_routes_to_decord_on_cpu(tmp_path):
    rng = np.random.default_rng(3)
    write_video(str(tmp_path / 'v' / 'a.mp4'), render_clip(0, 20, 64, rng))
    (tmp_path / 'ann.txt').write_text('a.mp4 0\n')
    ds = build(str(tmp_path / 'ann.txt'), str(tmp_path / 'v'))
    item = ds[0]
    assert item['inputs']['codec'] == 'h264'
    key = ('cpu', "codec 'h264'", 'decord')
    before = ROUTED[key]
    out = dali_collate([item], device='cpu')['inputs'][0]
    assert ROUTED[key] == before + 1
    assert torch.equal(out, decode_decord(item['inputs']))


# ------------------------------------------------------------------ DDP
def _shard_worker(rank, world, port, ann, root, out):
    import torch.distributed as dist
    import amd_mmaction  # noqa: F401
    from mmengine.runner import Runner
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world)
    init_default_scope('mmaction')
    seen = {}
    for run in ('a', 'b'):  # two loaders built alike: same order
        loader = Runner.build_dataloader(dict(
            batch_size=3, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='dali_collate', device='cpu'),
            dataset=dict(type='DALIVideoDataset', ann_file=ann, data_prefix=dict(video=root),
                         pipeline=dali_pipeline())), seed=0)
        for epoch in (0, 1):
            loader.sampler.set_epoch(epoch)
            names = []
            for batch in loader:
                assert all(x.shape == (2, 3, 8, 64, 64) for x in batch['inputs'])
                names += [s.metainfo['filename'] for s in batch['data_samples']]
            seen[f'{run}{epoch}'] = names
    with open(osp.join(out, f'rank{rank}.json'), 'w') as f:
        json.dump(seen, f)
    dist.destroy_process_group()


def test_two_ranks_shard_the_epoch(motion_data, tmp_path):
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.spawn(_shard_worker, args=(2, port, motion_data['train'], motion_data['root'],
                                  str(tmp_path)), nprocs=2)
    ranks = [json.load(open(tmp_path / f'rank{r}.json')) for r in range(2)]
    files = sorted(os.listdir(osp.join(motion_data['root'], 'train')))
    for epoch in ('0', '1'):
        a, b = ranks[0]['a' + epoch], ranks[1]['a' + epoch]
        assert len(a) == len(b) == 6  # 12 clips / 2 ranks
        assert not set(a) & set(b)
        assert sorted(osp.basename(n) for n in a + b) == files
    for r in ranks:
        assert r['a0'] == r['b0'] and r['a1'] == r['b1']  # deterministic for a seed
        assert r['a0'] != r['a1']  # reshuffled per epoch


# ------------------------------------------------------------- bad files
@pytest.fixture(scope='module')
def bad_set(tmp_path_factory, motion_data):
    """A data set mixing good clips with every kind of bad file."""
    import av
    root = tmp_path_factory.mktemp('bad')
    v = root / 'v'
    v.mkdir()
    rng = np.random.default_rng(7)
    write_video(str(v / 'good0.webm'), render_clip(0, 24, 64, rng))
    write_video(str(v / 'good1.webm'), render_clip(1, 24, 64, rng))
    write_video(str(v / 'short.webm'), render_clip(2, 5, 64, rng))  # needs 15
    good = (v / 'good0.webm').read_bytes()
    (v / 'trunc.webm').write_bytes(good[:len(good) // 3])  # readable, too short
    (v / 'garbage.webm').write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    # scramble the first bytes of every inter frame: the file demuxes fully
    # (24 frames) but cannot be decoded
    corrupt = bytearray(good)
    with av.open(str(v / 'good0.webm')) as c:
        payloads = [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]
    for payload in payloads[1:]:
        at = good.find(payload)
        corrupt[at:at + 6] = bytes(b ^ 0xA5 for b in corrupt[at:at + 6])
    (v / 'corrupt.webm').write_bytes(bytes(corrupt))
    with av.open(str(v / 'zero.avi'), 'w') as c:  # a valid file without frames
        s = c.add_stream('mjpeg', rate=12)
        s.width, s.height, s.pix_fmt = 64, 64, 'yuvj420p'
        c.start_encoding()
    names = ['good0.webm', 'missing.webm', 'garbage.webm', 'zero.avi', 'short.webm',
             'trunc.webm', 'corrupt.webm', 'good1.webm']
    (root / 'ann.txt').write_text(''.join(f'{n} {i % 6}\n' for i, n in enumerate(names)))
    return str(root / 'ann.txt'), str(v)


def test_skip_replaces_bad_clips_and_counts(bad_set):
    ds = build(*bad_set, on_bad_clip='skip', check_files=False)
    got = [osp.basename(ds[i]['inputs']['filename']) for i in range(len(ds))]
    # missing, garbage, zero, short, trunc -> the next good clip (index + 1, ...)
    assert got == ['good0.webm'] + ['corrupt.webm'] * 5 + ['corrupt.webm', 'good1.webm']
    # every visit of a bad clip is counted (ds[1] meets five of them, ...)
    assert dict(ds.bad_clips) == dict(missing=1, unreadable=2, zero_frames=3, short=9)
    # corrupt.webm probes fine but cannot be decoded: dropped from its batch
    batch = dali_collate([ds[0], ds[6], ds[7]], device='cpu')
    assert [osp.basename(s.metainfo['filename']) for s in batch['data_samples']] == \
        ['good0.webm', 'good1.webm']


def test_pad_keeps_short_clips(bad_set):
    ds = build(*bad_set, on_bad_clip='pad', check_files=False)
    short = ds[4]['inputs']
    assert osp.basename(short['filename']) == 'short.webm'
    assert short['frame_inds'].max() < 5  # SampleFrames loops inside the clip
    assert osp.basename(ds[5]['inputs']['filename']) == 'trunc.webm'
    assert osp.basename(ds[1]['inputs']['filename']) == 'short.webm'  # missing: skipped
    assert ds.bad_clips['short'] == 3  # short, trunc, and short again via ds[1]
    x = dali_collate([ds[4]], device='cpu')['inputs'][0]
    assert x.shape == (2, 3, 8, 64, 64)


@pytest.mark.parametrize('index,reason', [(1, 'missing'), (2, 'unreadable'),
                                          (3, 'zero_frames'), (4, 'short'), (5, 'short')])
def test_fail_names_file_and_reason(bad_set, index, reason):
    ds = build(*bad_set, on_bad_clip='fail', check_files=False)
    with pytest.raises(BadClipError, match=reason) as err:
        ds[index]
    assert osp.basename(err.value.path) == \
        ['good0.webm', 'missing.webm', 'garbage.webm', 'zero.avi', 'short.webm',
         'trunc.webm'][index]


def test_fail_on_undecodable_clip_in_batch(bad_set):
    ds = build(*bad_set, on_bad_clip='fail', check_files=False)
    with pytest.raises(BadClipError, match='corrupt.webm'):
        dali_collate([ds[0], ds[6]], device='cpu')


def test_decord_path_shares_the_policy(bad_set):
    from mmaction.registry import DATASETS
    init_default_scope('mmaction')
    pipe = [dict(type='DecordInit'),
            dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1),
            dict(type='DecordDecode'),
            dict(type='FormatShape', input_format='NCTHW'),
            dict(type='PackActionInputs', meta_keys=('filename',))]
    ds = DATASETS.build(dict(type='RobustVideoDataset', ann_file=bad_set[0],
                             data_prefix=dict(video=bad_set[1]), pipeline=pipe,
                             on_bad_clip='skip', check_files=False))
    names = [osp.basename(ds[i]['data_samples'].metainfo['filename']) for i in range(1, 7)]
    assert names == ['good1.webm'] * 6  # corrupt.webm fails in DecordDecode
    assert set(ds.bad_clips) >= {'missing', 'short', 'decode'}


# ---------------------------------------------------------- Runner + resume
def test_tiny_config_trains_and_resumes(tiny_cfg):
    from mmengine.runner import Runner
    opts = {'model.teacher.checkpoint': None, 'train_cfg.max_epochs': 1,
            'default_hooks.checkpoint.interval': 1}
    cfg = tiny_cfg('amd_tiny_motion_dali.py', **opts)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 3  # 12 clips / batch 4
    assert torch.isfinite(torch.tensor(runner.message_hub.get_scalar('train/loss').current()))
    cfg2 = tiny_cfg('amd_tiny_motion_dali.py', **dict(opts, **{'train_cfg.max_epochs': 2}),
                    resume=True, load_from=osp.join(cfg.work_dir, 'epoch_1.pth'))
    runner2 = Runner.from_cfg(cfg2)
    runner2.train()
    assert runner2.epoch == 2 and runner2.iter == 6  # continued from epoch 1
    assert runner2.train_dataloader.sampler.epoch == 1


# ------------------------------------------------------------------- GPU
@pytest.mark.skipif(not torch.cuda.is_available(), reason='NVDEC needs CUDA')
def test_gpu_nvdec_matches_decord(tmp_path):
    rng = np.random.default_rng(5)
    for ext in ('mp4', 'webm'):
        path = str(tmp_path / f'a.{ext}')
        write_video(path, render_clip(0, 24, 128, rng))  # NVDEC's minimum size
        plan = dict(whole_frames(path, [3, 0, 23, 9], size=128),
                    codec='h264' if ext == 'mp4' else 'vp9')
        gpu = decode_dali([plan], device='gpu')[0]
        assert gpu.is_cuda
        assert_close(gpu.cpu(), decode_decord(plan))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='NVDEC needs CUDA')
def test_gpu_routes_small_clips_to_cpu(motion_data):
    """The 64x64 demo clips are under NVDEC's 128-pixel minimum: decoded by
    DALI's CPU decoder, handed over on the GPU."""
    ds = build(motion_data['train'], motion_data['root'])
    items = [ds[i] for i in range(2)]
    batch = dali_collate(items, device='gpu')
    assert all(x.is_cuda for x in batch['inputs'])
    assert ROUTED[('gpu', 'frames under 128px', 'cpu')] >= 2
    for x, item in zip(batch['inputs'], items):
        assert_close(x.cpu(), decode_decord(item['inputs']))
