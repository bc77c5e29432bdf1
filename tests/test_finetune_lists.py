"""Fine-tuning, linear-probe and test lists get the checks pre-training lists
have: every bad line named ``file:line`` with its text and the expected form
before any training, 0-byte videos under the bad-clip policy, labels checked
against the model's ``cls_head.num_classes`` before the first iteration.

Real VP9 .webm and H.264 .mp4 files, the shipped tiny fine-tuning config's
data sets, mmaction2's own VideoDataset for comparison, the real Runner.
"""
import glob
import os.path as osp
import random
import re
import uuid

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmaction.registry import DATASETS
from amd_mmaction.data import BadClipError, check_video_list
from amd_mmaction.engine import DataListCheckHook
from amd_mmaction.data.synthetic import make_motion_dataset

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FINETUNE = osp.join(ROOT, 'configs', 'tiny', 'finetune_tiny_motion.py')
EXPECT = 'expected "<relative path> <label>" separated by one space, label in [0, 6)'


@pytest.fixture(autouse=True)
def mmaction_scope():
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')


@pytest.fixture(scope='module')
def mp4_data(tmp_path_factory):
    """6 train + 2 val H.264 .mp4 clips (Kinetics' container), 6 classes."""
    return make_motion_dataset(str(tmp_path_factory.mktemp('mp4')), num_train=6, num_val=2,
                               num_frames=12, size=32, ext='mp4', seed=1)


def shipped_dataset(loader, ann, root, **overrides):
    """The data set of ``loader`` in the shipped tiny fine-tuning config."""
    cfg = Config.fromfile(FINETUNE)[loader].dataset
    cfg.update(ann_file=ann, data_prefix=dict(video=root), **overrides)
    return DATASETS.build(cfg)


def with_line(data, tmp_path, text, lineno=3):
    """The train list of ``data`` with ``text`` as line ``lineno``."""
    lines = open(data['train']).read().splitlines()
    lines.insert(lineno - 1, text)
    ann = tmp_path / 'list.txt'
    ann.write_text('\n'.join(lines) + '\n')
    return str(ann)


# -- a good list ------------------------------------------------------------------
@pytest.mark.parametrize('which', ['motion_data', 'mp4_data'])
def test_good_list_passes_and_matches_mmaction2(request, which):
    data = request.getfixturevalue(which)
    got = check_video_list(data['train'], data['root'], num_classes=6)
    plain = DATASETS.build(dict(type='VideoDataset', ann_file=data['train'],
                                data_prefix=dict(video=data['root']), pipeline=[]))
    assert got == [(d['filename'], d['label']) for d in plain.load_data_list()]
    assert [label for _, label in got] == [i % 6 for i in range(len(got))]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = shipped_dataset(loader, data['train'], data['root'])
        assert [(ds.get_data_info(i)['filename'], ds.get_data_info(i)['label'])
                for i in range(len(ds))] == got


def test_shipped_dataset_gives_the_same_samples(motion_data):
    """RobustVideoDataset changes no training number: the same crops,
    erasing and frames as mmaction2's VideoDataset under the same seed."""
    robust = shipped_dataset('train_dataloader', motion_data['train'], motion_data['root'])
    cfg = Config.fromfile(FINETUNE).train_dataloader.dataset
    plain = DATASETS.build(dict(type='VideoDataset', ann_file=motion_data['train'],
                                data_prefix=dict(video=motion_data['root']),
                                pipeline=cfg.pipeline))
    for idx in (0, 5):
        out = []
        for ds in (robust, plain):
            random.seed(idx), np.random.seed(idx), torch.manual_seed(idx)
            out.append(ds[idx]['inputs'])
        assert torch.equal(*out)


# -- each bad line: file:line, the text, what was expected ---------------------------
BAD_LINES = [
    ('train/train_00000.webm 6', r'label 6 is outside 0\.\.5 \(num_classes=6\)'),
    ('train/train_00000.webm -1', r'label -1 is outside 0\.\.5'),
    ('train/train_00000.webm', r'the line has no label'),
    ('train/train_00000.webm\t2', r"the line is tab-separated: mmaction2 splits on delimiter=' '"),
    ('train/train_00000.webm,2', r"the line is separated by commas: mmaction2 splits on delimiter=' '"),
    ('train/train_00000.webm  2', r"empty field: several ' ' in a row"),
    ('train/train_00000.webm two', r"label 'two' is not an integer"),
    ('my clip.webm 2', r'expected "<path> <label>", got 3 fields \(a path with spaces cannot be listed\)'),
]


@pytest.mark.parametrize('text, problem', BAD_LINES)
def test_bad_line_named(motion_data, tmp_path, text, problem):
    ann = with_line(motion_data, tmp_path, text)
    where = re.escape(f'{ann}:3: ')
    shown = re.escape(f'{text!r}; {EXPECT}')
    with pytest.raises(ValueError, match=where + problem + '.*' + shown):
        check_video_list(ann, motion_data['root'], num_classes=6)
    # the shipped fine-tuning config's train, val and test data sets
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        with pytest.raises(ValueError, match=where + problem):
            shipped_dataset(loader, ann, motion_data['root'])


def test_what_mmaction2_makes_of_a_tab_line(motion_data, tmp_path):
    """Why tabs are refused: mmaction2's parser silently reads an unlabeled
    video whose name holds the tab (label -1, which mixup cannot take)."""
    ann = with_line(motion_data, tmp_path, 'train/train_00000.webm\t2')
    plain = DATASETS.build(dict(type='VideoDataset', ann_file=ann,
                                data_prefix=dict(video=motion_data['root']), pipeline=[]))
    assert plain.load_data_list()[2]['label'] == -1
    # a tab list is fine where the data set is told so
    tabbed = tmp_path / 'tabbed.txt'
    tabbed.write_text(open(motion_data['train']).read().replace(' ', '\t'))
    assert check_video_list(str(tabbed), motion_data['root'], 6, delimiter='\t') == \
        check_video_list(motion_data['train'], motion_data['root'], 6)


def test_every_bad_line_reported_at_once(motion_data, tmp_path):
    ann = with_line(motion_data, tmp_path, 'train/train_00000.webm 9')
    lines = open(ann).read().splitlines()
    lines[6] = 'train/nowhere.webm 1'
    open(ann, 'w').write('\n'.join(lines) + '\n')
    with pytest.raises(ValueError) as exc:
        check_video_list(ann, motion_data['root'], num_classes=6)
    msg = str(exc.value)
    assert msg.startswith(f"2 bad lines in {ann!r}:"), msg
    assert f'{ann}:3: label 9' in msg
    assert f"{ann}:7: video {osp.join(motion_data['root'], 'train/nowhere.webm')!r} " \
           "does not exist (listed as 'train/nowhere.webm')" in msg


def test_empty_list(tmp_path, motion_data):
    ann = tmp_path / 'empty.txt'
    ann.write_text('\n \n')
    with pytest.raises(ValueError, match='lists no video .*' + re.escape(EXPECT)):
        check_video_list(str(ann), motion_data['root'], 6)
    with pytest.raises(FileNotFoundError, match='absent.txt'):
        check_video_list(str(tmp_path / 'absent.txt'), motion_data['root'], 6)


# -- missing, 0-byte and corrupt videos ----------------------------------------------
@pytest.fixture
def damaged(motion_data, tmp_path):
    """The train list plus a 0-byte .webm (line 13) and a random-bytes one (14)."""
    (tmp_path / 'zero.webm').write_bytes(b'')
    (tmp_path / 'corrupt.webm').write_bytes(bytes(np.random.default_rng(0).integers(
        0, 256, 3000, dtype=np.uint8)))
    ann = tmp_path / 'list.txt'
    ann.write_text(open(motion_data['train']).read()
                   + f'{tmp_path}/zero.webm 1\n{tmp_path}/corrupt.webm 2\n')
    return dict(ann=str(ann), zero=str(tmp_path / 'zero.webm'),
                corrupt=str(tmp_path / 'corrupt.webm'), root=motion_data['root'])


def test_check_video_list_names_zero_byte_and_unreadable(damaged):
    with pytest.raises(ValueError) as exc:
        check_video_list(damaged['ann'], damaged['root'], 6)
    assert f"{damaged['ann']}:13: video {damaged['zero']!r} is a 0-byte file" in str(exc.value)
    assert ':14:' not in str(exc.value)  # random bytes: only a probe can tell
    with pytest.raises(ValueError) as exc:
        check_video_list(damaged['ann'], damaged['root'], 6, probe=True)
    assert f"{damaged['ann']}:14: bad clip {damaged['corrupt']!r} (unreadable)" in str(exc.value)


@pytest.mark.parametrize('loader', ['train_dataloader', 'test_dataloader'])
def test_zero_byte_video_fail_policy(damaged, loader):
    with pytest.raises(BadClipError, match=re.escape(f"bad clip {damaged['zero']!r} (unreadable)"
                                                     f": 0-byte file, listed at {damaged['ann']}:13")):
        shipped_dataset(loader, damaged['ann'], damaged['root'], on_bad_clip='fail')


@pytest.mark.parametrize('loader', ['train_dataloader', 'test_dataloader'])
def test_zero_byte_video_skip_policy(damaged, loader, capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance(f'ft_lists_{uuid.uuid4().hex[:6]}', log_level='WARNING')
    ds = shipped_dataset(loader, damaged['ann'], damaged['root'])  # the config's 'pad'
    assert len(ds) == 13  # 12 good + the corrupt one (only reading tells)
    assert ds.bad_clips == {'unreadable': 1}
    out = capsys.readouterr()
    assert f"skip bad clip {damaged['zero']!r} (unreadable): 0-byte file, listed at " \
           f"{damaged['ann']}:13" in out.out + out.err
    # the corrupt clip, met when read, gets the same policy: replaced, counted
    sample = ds[12]  # labeled 2, replaced by item 0 (label 0)
    assert int(sample['data_samples'].gt_label) == 0
    assert ds.bad_clips == {'unreadable': 1, 'decode': 1}


def test_zero_byte_read_when_files_are_not_checked(damaged):
    ds = shipped_dataset('test_dataloader', damaged['ann'], damaged['root'],
                         check_files=False, on_bad_clip='fail')
    with pytest.raises(BadClipError, match=re.escape(repr(damaged['zero'])) + r' \(decode\)'):
        ds[12]


# -- labels against the model, before the first iteration ----------------------------
def runner_for(tiny_cfg, motion_data, **overrides):
    from mmengine.runner import Runner
    cfg = tiny_cfg('finetune_tiny_motion.py', **{
        'val_dataloader.dataset.ann_file': motion_data['val'],
        'val_dataloader.dataset.data_prefix.video': motion_data['root'],
        'model.backbone.depth': 1, 'train_cfg.max_epochs': 1, **overrides})
    return Runner.from_cfg(cfg)


def test_runner_refuses_label_beyond_model_head(motion_data, tiny_cfg):
    """The data sets leave num_classes unset (as configs/finetune do); the
    model's head has 4 classes: the hook names each bad line and the
    blending augments before any iteration."""
    runner = runner_for(tiny_cfg, motion_data, **{
        'model.cls_head.num_classes': 4,
        'train_dataloader.dataset.num_classes': None,
        'val_dataloader.dataset.num_classes': None})
    with pytest.raises(ValueError) as exc:
        runner.train()
    assert runner.iter == 0
    msg = str(exc.value)
    train, val = motion_data['train'], motion_data['val']
    assert f'{train}:5: label 4 is outside 0..3 (train_dataloader; model.cls_head.num_classes=4,' \
           ' expected a label in [0, 4))' in msg
    assert f'{val}:5: label 4 is outside 0..3 (val_dataloader;' in msg
    assert 'model.data_preprocessor.blending: MixupBlending.num_classes=6 but ' \
           'model.cls_head.num_classes=4' in msg
    assert msg.startswith('8 data/model mismatches found before the run')  # 2 blending, 4 train, 2 val


def test_runner_with_good_lists_passes_the_hook(motion_data, tiny_cfg):
    runner = runner_for(tiny_cfg, motion_data)
    runner.train_loop, runner.val_loop  # build the data sets as train() does
    DataListCheckHook().before_run(runner)
    assert any(isinstance(h, DataListCheckHook) for h in runner.hooks)


def test_runner_refuses_bad_list_when_built(motion_data, tiny_cfg, tmp_path):
    """The shipped config passes num_classes: a bad train line fails when
    train() builds the data set, before any iteration."""
    ann = with_line(motion_data, tmp_path, 'train/train_00001.webm 6', lineno=2)
    runner = runner_for(tiny_cfg, motion_data, **{'train_dataloader.dataset.ann_file': ann})
    with pytest.raises(ValueError, match=re.escape(f'{ann}:2: label 6 is outside 0..5')):
        runner.train()
    assert isinstance(runner._train_loop, dict)  # the loop was never built, nothing ran


def test_image_labels_checked_against_the_head(tmp_path):
    """Image data sets (list or class folders) get the same label check:
    a -1 in a list, and a fourth class folder for a 3-class head."""
    from amd_mmaction.engine.hooks.data_check import label_errors
    from amd_mmaction.transfer.image.synthetic import make_shape_dataset
    shapes = make_shape_dataset(str(tmp_path), num_train=4, num_val=0, size=16)
    lines = open(shapes['train']).read().splitlines()
    lines[1] = lines[1].rsplit(' ', 1)[0] + ' -1'
    (tmp_path / 'neg.txt').write_text('\n'.join(lines) + '\n')
    listed = DATASETS.build(dict(type='ImageListDataset', ann_file=str(tmp_path / 'neg.txt'),
                                 data_prefix=dict(img=shapes['root']), pipeline=[]))
    folders = DATASETS.build(dict(type='ImageListDataset', ann_file='',
                                  data_prefix=dict(img=shapes['train_dir']), pipeline=[]))
    assert label_errors(listed, 4, 'train_dataloader') == [  # file:line, and -1 is a label here
        f'{tmp_path / "neg.txt"}:2: label -1 is outside 0..3 (train_dataloader; '
        'model.cls_head.num_classes=4, expected a label in [0, 4))']
    errors = label_errors(folders, 3, 'val_dataloader')
    assert len(errors) == 1 and 'label 3 is outside 0..2' in errors[0], errors


# -- the shipped configs --------------------------------------------------------------
@pytest.mark.parametrize('path', sorted(glob.glob(osp.join(ROOT, 'configs', 'finetune', '*.py')))
                         + [FINETUNE, osp.join(ROOT, 'configs', 'tiny', 'linear_probe_tiny_motion.py')])
def test_shipped_configs_check_their_lists(path):
    cfg = Config.fromfile(path)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        assert (ds.type, ds.check_files, ds.require_label, ds.on_bad_clip) == \
            ('RobustVideoDataset', True, True, 'pad'), (path, loader, ds)
    assert 'DataListCheckHook' in [h['type'] for h in cfg.custom_hooks], path
