"""Bad inputs end in a clear error naming the file/key/value, or in a
logged, counted skip where skipping is the configured policy.

Every case uses real files: videos written with PyAV and then damaged,
real annotation files, real checkpoints, the real decord pipeline and the
real mmengine Runner.
"""
import copy
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from mmaction.registry import DATASETS, MODELS
from amd_mmaction.data.probe import BadClipError
from amd_mmaction.data.robust import read_annotation
from amd_mmaction.data.synthetic import render_clip, write_video

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = osp.join(ROOT, 'configs', 'tiny')
CLIP_LEN = 8  # SampleFrames(8, 1): a clip needs 8 frames


@pytest.fixture(autouse=True)
def mmaction_scope():
    # Outside a Runner, pipelines are built from mmaction's registries.
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')


def pipeline():
    return [dict(type='DecordInit'),
            dict(type='SampleFrames', clip_len=CLIP_LEN, frame_interval=1, num_clips=1),
            dict(type='DecordDecode'),
            dict(type='Resize', scale=(32, 32), keep_ratio=False),
            dict(type='FormatShape', input_format='NCTHW'),
            dict(type='PackActionInputs', meta_keys=('img_shape', 'filename'))]


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    """One good clip plus every kind of damaged clip, as real files."""
    root = tmp_path_factory.mktemp('bad_videos')
    rng = np.random.default_rng(0)
    p = {k: str(root / f'{k}.webm') for k in ('good', 'good2', 'short', 'corrupt',
                                              'truncated', 'empty', 'zero', 'header')}
    write_video(p['good'], render_clip(0, 24, 64, rng))
    write_video(p['good2'], render_clip(1, 24, 64, rng))
    write_video(p['short'], render_clip(2, 4, 64, rng))  # 4 frames < clip_len 8
    data = open(p['good'], 'rb').read()
    open(p['corrupt'], 'wb').write(bytes(rng.integers(0, 256, 4000, dtype=np.uint8)))
    open(p['truncated'], 'wb').write(data[:len(data) // 5])  # a broken download
    open(p['empty'], 'wb').close()
    open(p['header'], 'wb').write(data[:200])  # container header, no stream
    import av
    with av.open(p['zero'], 'w') as c:  # a valid container with zero frames
        s = c.add_stream('libvpx-vp9', rate=12)
        s.width = s.height = 64
        s.pix_fmt = 'yuv420p'
        c.start_encoding()
    # H.264 in MP4 cut before its index (moov atom): unreadable.
    p['mp4_truncated'] = str(root / 'cut.mp4')
    write_video(p['mp4_truncated'], render_clip(3, 24, 64, rng))
    mp4 = open(p['mp4_truncated'], 'rb').read()
    open(p['mp4_truncated'], 'wb').write(mp4[:len(mp4) // 2])
    p['root'] = str(root)
    return p


def dataset(videos, tmp_path, names, **kwargs):
    ann = tmp_path / 'list.txt'
    ann.write_text(''.join(f'{osp.basename(videos[n])} {i % 3}\n'
                           for i, n in enumerate(names)))
    kwargs.setdefault('on_bad_clip', 'fail')
    return DATASETS.build(dict(type='RobustVideoDataset', ann_file=str(ann),
                               data_prefix=dict(video=videos['root']),
                               pipeline=pipeline(), **kwargs))


# -- clips: each bad kind under 'fail' names the file and the reason -------
@pytest.mark.parametrize('kind, reason', [
    ('corrupt', r'\(decode\).*DecordInit'),
    ('truncated', r'\((short|decode)\)'),
    ('empty', r'\(decode\).*DecordInit'),
    ('header', r'\(decode\).*DecordInit'),
    ('zero', r'\((zero_frames|decode)\)'),
    ('mp4_truncated', r'\(decode\).*DecordInit'),
    ('short', r'\(short\): 4 frames, the clip sampler needs 8'),
])
def test_bad_clip_fail_names_file(videos, tmp_path, kind, reason):
    ds = dataset(videos, tmp_path, ['good', kind])
    assert ds[0]['inputs'].shape == (1, 3, CLIP_LEN, 32, 32)
    with pytest.raises(BadClipError) as exc:
        ds[1]
    msg = str(exc.value)
    assert videos[kind] in msg, msg
    assert re.search(reason, msg), msg


def test_missing_file_after_load(videos, tmp_path):
    """A video deleted after the list was read (network mounts do this)."""
    gone = tmp_path / 'gone.webm'
    gone.write_bytes(open(videos['good'], 'rb').read())
    ann = tmp_path / 'list.txt'
    ann.write_text(f'{gone} 0\n{videos["good"]} 1\n')
    ds = DATASETS.build(dict(type='RobustVideoDataset', ann_file=str(ann),
                             data_prefix=dict(video=''), pipeline=pipeline(),
                             on_bad_clip='skip'))
    gone.unlink()
    sample = ds[0]
    assert sample['data_samples'].filename == videos['good']  # the next clip
    assert ds.bad_clips == {'missing': 1}


def test_codec_unreadable_by_decord(videos, tmp_path):
    """AV1: PyAV encodes it, decord 0.6's FFmpeg cannot open the stream."""
    import av
    if 'libsvtav1' not in av.codecs_available:
        pytest.skip('this PyAV has no AV1 encoder')
    path = str(tmp_path / 'av1.mkv')
    frames = render_clip(0, 12, 64, np.random.default_rng(1))
    with av.open(path, 'w') as c:
        s = c.add_stream('libsvtav1', rate=12)
        s.width = s.height = 64
        s.pix_fmt = 'yuv420p'
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format='rgb24')))
        c.mux(s.encode())
    ds = dataset(dict(videos, av1=path, root=str(tmp_path)), tmp_path, ['av1'])
    with pytest.raises(BadClipError, match=re.escape(path) + r'.*decode.*DecordInit'):
        ds[0]


def test_skip_policy_logs_counts_and_replaces(videos, tmp_path, capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance('bad_inputs_skip', log_level='WARNING')
    names = ['good', 'corrupt', 'empty', 'good2', 'short']
    ds = dataset(videos, tmp_path, names, on_bad_clip='skip')
    got = [osp.basename(ds[i]['data_samples'].filename) for i in range(len(ds))]
    # corrupt and empty are replaced by the next good clip; short wraps to 0.
    assert got == ['good.webm', 'good2.webm', 'good2.webm', 'good2.webm', 'good.webm']
    # every failed read is counted: corrupt+empty for item 1, empty for item 2
    assert ds.bad_clips == {'decode': 3, 'short': 1}
    out = capsys.readouterr()
    log = out.out + out.err
    assert videos['corrupt'] in log and videos['short'] in log


def test_pad_policy_keeps_short_clip(videos, tmp_path):
    ds = dataset(videos, tmp_path, ['short', 'corrupt', 'good'], on_bad_clip='pad')
    short = ds[0]
    assert short['data_samples'].filename == videos['short']  # kept, frames looped
    assert short['inputs'].shape == (1, 3, CLIP_LEN, 32, 32)
    assert ds[1]['data_samples'].filename == videos['good']  # nothing to pad: skipped
    assert ds.bad_clips == {'short': 1, 'decode': 1}


def test_all_clips_bad_is_an_error(videos, tmp_path):
    ds = dataset(videos, tmp_path, ['corrupt', 'empty'], on_bad_clip='skip', max_refetch=3)
    with pytest.raises(RuntimeError, match='clips in a row from index 0 are bad'):
        ds[0]


def test_policy_name_checked(videos, tmp_path):
    with pytest.raises(ValueError, match="on_bad_clip='drop' is not one of"):
        dataset(videos, tmp_path, ['good'], on_bad_clip='drop')


# -- annotation files: file:line and the value --------------------------------
def write_ann(tmp_path, text):
    ann = tmp_path / 'ann.txt'
    ann.write_text(text)
    return str(ann)


@pytest.mark.parametrize('line, expected', [
    ('good.webm seven', "label 'seven' is not an integer"),
    ('good.webm 9', 'label 9 is outside 0..5'),
    ('good.webm -2', 'label -2 is outside 0..5'),
    ('good.webm 1 extra', 'expected "<path> <label>", got 3 fields'),
    ('nowhere.webm 1', "video '.*nowhere.webm' does not exist"),
])
def test_bad_annotation_line(videos, tmp_path, line, expected):
    ann = write_ann(tmp_path, f'good.webm 0\n{line}\n')
    with pytest.raises(ValueError, match=re.escape(ann) + ':2: ' + expected):
        read_annotation(ann, videos['root'], num_classes=6, check_files=True)
    # the same through the data set config
    with pytest.raises(ValueError, match=re.escape(ann) + ':2: '):
        DATASETS.build(dict(type='RobustVideoDataset', ann_file=ann, num_classes=6,
                            check_files=True, data_prefix=dict(video=videos['root']),
                            pipeline=pipeline()))


def test_bad_annotation_lines_skipped_and_counted(videos, tmp_path, capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance('bad_inputs_ann', log_level='WARNING')
    ann = write_ann(tmp_path, 'good.webm 0\nnowhere.webm 1\ngood2.webm x\ngood2.webm 1\n')
    ds = DATASETS.build(dict(type='RobustVideoDataset', ann_file=ann,
                             data_prefix=dict(video=videos['root']), pipeline=pipeline(),
                             on_bad_annotation='skip', check_files=True))
    assert [osp.basename(ds.get_data_info(i)['filename']) for i in range(len(ds))] == \
        ['good.webm', 'good2.webm']
    out = capsys.readouterr()
    log = out.out + out.err
    assert f'{ann}:2' in log and f'{ann}:3' in log and '2 bad lines so far' in log


def test_empty_annotation_file(videos, tmp_path):
    ann = write_ann(tmp_path, '\n\n')
    with pytest.raises(ValueError, match=re.escape(repr(ann)) + r' lists no usable video '
                                         r'\(the file is empty\)'):
        DATASETS.build(dict(type='RobustVideoDataset', ann_file=ann,
                            data_prefix=dict(video=videos['root']), pipeline=pipeline()))


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='annotation file .*absent.txt'):
        read_annotation(str(tmp_path / 'absent.txt'))


@pytest.mark.parametrize('context', ['fork', 'spawn'])
def test_counts_include_dataloader_workers(videos, tmp_path, context):
    """Worker processes count into the data set's shared table: the main
    process sees every bad clip its workers met, per reason."""
    from torch.utils.data import DataLoader
    names = ['good', 'corrupt', 'good2', 'empty', 'short', 'good', 'zero', 'good2']
    ds = dataset(videos, tmp_path, names, on_bad_clip='skip')
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=pseudo_collate,
                        multiprocessing_context=context)
    assert sum(len(b['inputs']) for b in loader) == len(names)
    # the same items read in this process count the same (a skipped item's
    # replacement can be bad too: empty -> short)
    alone = dataset(videos, tmp_path, names, on_bad_clip='skip')
    for i in range(len(alone)):
        alone[i]
    assert ds.bad_clips == alone.bad_clips == {'decode': 3, 'short': 2}
    assert ds.policy.total == 5


# -- a corrupt clip in the middle of a real Runner epoch -----------------------
@pytest.mark.parametrize('workers', [0, 2])
def test_runner_epoch_survives_corrupt_clip(motion_data, tiny_cfg, videos, tmp_path, workers):
    from mmengine.runner import Runner
    lines = open(motion_data['train']).read().split('\n')[:8]
    lines.insert(4, f'{videos["corrupt"]} 0')  # absolute path: os.path.join keeps it
    ann = tmp_path / 'train_with_bad.txt'
    ann.write_text('\n'.join(lines) + '\n')
    cfg = tiny_cfg('videomae_student_tiny_motion.py', **{
        'train_dataloader.dataset.type': 'RobustVideoDataset',
        'train_dataloader.dataset.on_bad_clip': 'skip',
        'train_dataloader.dataset.ann_file': str(ann),
        'train_dataloader.sampler.shuffle': False,
        'train_dataloader.batch_size': 3,
        'train_dataloader.num_workers': workers,
        'train_cfg.max_epochs': 1,
        'default_hooks.checkpoint.interval': 100,
        'model.student.depth': 1, 'model.decoder.depth': 1})
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 3  # 9 lines / batch 3: the epoch ran to its end
    assert runner.train_dataloader.dataset.bad_clips == {'decode': 1}  # also from a worker
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    if not workers:  # a worker's WARNING goes to its own stderr, not the run's log file
        assert f"bad clip '{videos['corrupt']}' (decode)" in log
    # BadClipLogHook: the run's total in the iteration lines and per reason after the epoch
    assert re.search(r'Epoch\(train\) \[1\]\[3/3\].*bad_clips: 1\b', log), log[-2000:]
    assert "epoch 1: 1 bad clips so far in this run {'decode': 1}" in log


# -- model construction ----------------------------------------------------------
def tiny_model_cfg():
    return copy.deepcopy(Config.fromfile(osp.join(TINY, '_tiny_base.py')).model)


def vit(**kw):
    base = dict(type='VideoViT', img_size=64, patch_size=8, num_frames=8, tubelet_size=2,
                embed_dims=64, depth=4, num_heads=2)
    return dict(base, **kw)


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    """A real teacher checkpoint in mmengine format (encoder.* keys)."""
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher.pth')
    enc = MODELS.build(vit())
    torch.save({'meta': {'epoch': 1},
                'state_dict': {f'encoder.{k}': v for k, v in enc.state_dict().items()}}, path)
    return path


def teacher(checkpoint, taps=(2, 4), **kw):
    return MODELS.build(dict(type='FrozenTeacher', encoder=vit(**kw), taps=taps,
                             checkpoint=checkpoint))


def test_teacher_checkpoint_loads(teacher_ckpt):
    assert teacher(teacher_ckpt).taps == (2, 4)


def test_teacher_checkpoint_missing(tmp_path):
    path = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match=f"checkpoint file '{re.escape(path)}' does not exist"):
        teacher(path)


@pytest.mark.parametrize('content', [b'this is a text file, not weights\n', b''])
def test_teacher_checkpoint_wrong_format(tmp_path, content):
    path = tmp_path / 'notes.pth'
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(repr(str(path))) + ' is not a readable torch file'):
        teacher(str(path))


def test_teacher_checkpoint_without_encoder(tmp_path):
    path = str(tmp_path / 'head_only.pth')
    torch.save({'state_dict': {'cls_head.fc.weight': torch.zeros(6, 64)}}, path)
    with pytest.raises(ValueError, match='no encoder blocks found'):
        teacher(path)


def test_teacher_checkpoint_truncated(teacher_ckpt, tmp_path):
    path = tmp_path / 'cut.pth'
    data = open(teacher_ckpt, 'rb').read()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".* is not a readable torch file"):
        teacher(str(path))


def test_teacher_checkpoint_wrong_width(teacher_ckpt):
    with pytest.raises(ValueError, match=re.escape(teacher_ckpt) + r'.*shape mismatch.*'
                       r'checkpoint \(64,.*\) vs model \(96,'):
        teacher(teacher_ckpt, embed_dims=96, num_heads=2)


def test_teacher_checkpoint_wrong_depth(teacher_ckpt):
    with pytest.raises(ValueError, match=re.escape(teacher_ckpt) + ': checkpoint has 4 '
                       'blocks but the config builds 6; set depth=4'):
        teacher(teacher_ckpt, depth=6)


def test_teacher_taps_beyond_depth(teacher_ckpt):
    with pytest.raises(ValueError, match=r'teacher feature taps \[5\] are outside layers 1..4'):
        teacher(teacher_ckpt, taps=(2, 5))


def test_student_taps_beyond_depth():
    cfg = tiny_model_cfg()
    cfg.alignment.student_taps = (2, 7)
    with pytest.raises(ValueError, match=r'student feature taps \[7\] are outside layers 1..4'):
        MODELS.build(cfg)


@pytest.mark.parametrize('kw, expected', [
    (dict(student_ratio=0.75, teacher_ratio=0.9), 'teacher_ratio=0.9 must be < student_ratio=0.75'),
    (dict(student_ratio=1.0, teacher_ratio=0.5), r'student_ratio=1.0 must lie in \[0, 1\)'),
    (dict(student_ratio=0.9, teacher_ratio=-0.1), r'teacher_ratio=-0.1 must lie in \[0, 1\)'),
    (dict(student_ratio=0.9, teacher_ratio=0.895), r'give the same count \(57\)'),
    (dict(student_ratio=0.01, teacher_ratio=0.0), 'masks no cell of the 8x8 grid'),
])
def test_mask_ratios_invalid(kw, expected):
    from mmaction.registry import TRANSFORMS
    with pytest.raises(ValueError, match=expected):
        TRANSFORMS.build(dict(type='AsymmetricTubeMask', grid=(4, 8, 8), **kw))


def test_input_size_not_divisible_by_patch():
    with pytest.raises(ValueError, match='img_size=60 is not divisible by patch_size=8'):
        MODELS.build(vit(img_size=60))


def test_frames_not_divisible_by_tubelet():
    with pytest.raises(ValueError, match='num_frames=7 is not divisible by tubelet_size=2'):
        MODELS.build(vit(num_frames=7))


def test_clip_shape_differs_from_model():
    model = MODELS.build(vit())
    with pytest.raises(ValueError, match=r'input clip \(1, 3, 8, 48, 48\) does not match '
                       r'the model grid: expected \(B, C, 8, 64, 64\)'):
        model(torch.zeros(1, 3, 8, 48, 48))


# -- non-finite batches and losses -----------------------------------------------
@pytest.fixture(scope='module')
def batch_and_model(motion_data):
    """A real batch from the tiny pipeline and a small VideoMAE-style model."""
    cfg = Config.fromfile(osp.join(TINY, 'videomae_student_tiny_motion.py'))
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.update(ann_file=motion_data['train'], data_prefix=dict(video=motion_data['root']))
    ds_cfg.pipeline[-1]['meta_keys'] = ('img_shape', 'filename')
    ds = DATASETS.build(ds_cfg)
    data = pseudo_collate([ds[0], ds[1]])
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.student.depth = 1
    return data, model_cfg


def test_nan_in_batch_names_the_clips(batch_and_model):
    data, model_cfg = batch_and_model
    model = MODELS.build(model_cfg)
    batch = model.data_preprocessor(copy.deepcopy(data), True)
    batch['inputs'][1, 0, 0, 3, 5, 5] = float('nan')
    with pytest.raises(FloatingPointError, match=r'non-finite values \(NaN/Inf\) in the input '
                       r"batch: clips \[1\] \(\['.*train_00001.webm'\]\)"):
        model(**batch, mode='loss')


def _poison(model):
    """Give the decoder's output layer an Inf weight: the loss becomes NaN."""
    w = [p for n, p in model.decoder.named_parameters() if p.ndim == 2][-1]
    with torch.no_grad():
        w[0, 0] = float('inf')


def test_nonfinite_loss_stop_names_iteration_and_terms(batch_and_model):
    data, model_cfg = batch_and_model
    model = MODELS.build(model_cfg)
    _poison(model)
    MessageHub.get_current_instance().update_info('iter', 41)
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    with pytest.raises(FloatingPointError, match=r"non-finite loss at iteration 41: "
                       r"\{'loss_recon': (nan|inf)\}.*model.nonfinite='skip'"):
        model.train_step(copy.deepcopy(data), optim)


def test_nonfinite_loss_skip_counts_and_does_not_step(batch_and_model):
    data, model_cfg = batch_and_model
    model = MODELS.build(dict(model_cfg, nonfinite='skip'))
    _poison(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    for _ in range(2):
        log_vars = model.train_step(copy.deepcopy(data), optim)
    assert model.skipped_steps == 2 and float(log_vars['skipped_steps']) == 2
    assert not optim.optimizer.state  # AdamW never stepped
    after = model.state_dict()
    assert int(after['skipped_steps_count']) == 2
    assert all(torch.equal(before[k], after[k]) for k in before
               if k != 'skipped_steps_count' and torch.isfinite(before[k]).all())


def test_skipped_steps_survive_checkpoint_and_resume(batch_and_model, tmp_path):
    """The count is a buffer: saved with the weights, restored by mmengine's
    loader (the one ``resume``/``load_from`` use), so a resumed run keeps
    counting from where it stopped. A checkpoint from before the counter
    existed still loads (counter at 0)."""
    from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint
    data, model_cfg = batch_and_model
    model = MODELS.build(dict(model_cfg, nonfinite='skip'))
    _poison(model)
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    for _ in range(3):
        model.train_step(copy.deepcopy(data), optim)
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {}}, str(tmp_path / 'a.pth'))
    resumed = MODELS.build(dict(model_cfg, nonfinite='skip'))
    assert resumed.skipped_steps == 0
    load_checkpoint(resumed, str(tmp_path / 'a.pth'), map_location='cpu', strict=True)
    assert resumed.skipped_steps == 3
    _poison(resumed)
    log_vars = resumed.train_step(copy.deepcopy(data),
                                  OptimWrapper(torch.optim.AdamW(resumed.parameters(), lr=1e-3)))
    assert resumed.skipped_steps == 4 and float(log_vars['skipped_steps']) == 4
    old = {k: v for k, v in model.state_dict().items() if k != 'skipped_steps_count'}
    save_checkpoint({'state_dict': old, 'meta': {}}, str(tmp_path / 'old.pth'))
    fresh = MODELS.build(dict(model_cfg, nonfinite='skip'))
    load_checkpoint(fresh, str(tmp_path / 'old.pth'), map_location='cpu')
    assert fresh.skipped_steps == 0


def test_nonfinite_policy_name_checked():
    cfg = tiny_model_cfg()
    with pytest.raises(ValueError, match="nonfinite must be 'stop' or 'skip', got 'ignore'"):
        MODELS.build(dict(cfg, nonfinite='ignore'))


DDP_WORKER = r'''
import copy, json, os, sys
import torch, torch.distributed as dist
sys.path.insert(0, os.environ['AMD_ROOT'])
import amd_mmaction  # noqa
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmaction.registry import DATASETS, MODELS
from amd_mmaction.engine import CPUSafeDistributedDataParallel
ann, videos, out = sys.argv[1:4]
dist.init_process_group('gloo')
rank = dist.get_rank()
init_default_scope('mmaction')
cfg = Config.fromfile(os.path.join(os.environ['AMD_ROOT'], 'configs/tiny/videomae_student_tiny_motion.py'))
ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
ds_cfg.update(ann_file=ann, data_prefix=dict(video=videos))
ds = DATASETS.build(ds_cfg)
model_cfg = copy.deepcopy(cfg.model)
model_cfg.student.depth = 1
model = CPUSafeDistributedDataParallel(MODELS.build(dict(model_cfg, nonfinite='skip')))
if rank == 1:  # only this rank's loss becomes non-finite
    w = [p for n, p in model.module.decoder.named_parameters() if p.ndim == 2][-1]
    with torch.no_grad():
        w[0, 0] = float('inf')
MessageHub.get_current_instance().update_info('iter', 3)
optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0))
before = [p.detach().clone() for p in model.parameters()]
log_vars = model.train_step(pseudo_collate([ds[2 * rank], ds[2 * rank + 1]]), optim)
moved = sum(float((p.detach() - b).abs().max()) for p, b in zip(model.parameters(), before)
            if torch.isfinite(b).all())
json.dump(dict(skipped=model.module.skipped_steps, logged=float(log_vars['skipped_steps']),
               moved=moved), open(f'{out}.{rank}', 'w'))
dist.destroy_process_group()
'''


def test_nonfinite_loss_on_one_ddp_rank_skips_on_all(motion_data, tmp_path):
    """Two real gloo processes under mmengine's DDP wrapper: rank 1 has an
    Inf loss, rank 0 a finite one. Both skip the step (no rank is left
    waiting in backward, no weight moves with zero gradients and no decay)."""
    import json
    import socket
    import subprocess
    import sys
    script = tmp_path / 'ddp_worker.py'
    script.write_text(DDP_WORKER)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    out = str(tmp_path / 'result')
    env = dict(os.environ, AMD_ROOT=ROOT, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={port}', str(script), motion_data['train'], motion_data['root'], out],
        env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    results = [json.load(open(f'{out}.{r}')) for r in (0, 1)]
    assert all(r['skipped'] == 1 and r['logged'] == 1 for r in results), results
    assert results[0]['moved'] == 0, results
    assert 'skipped iteration 3: non-finite loss' in proc.stdout + proc.stderr
