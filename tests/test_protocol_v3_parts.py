"""Groundwork of protocol v3 (issue 21, docs/protocol_v3_design.md), each
part on real files, in seconds:

- held-out integrity: a validation clip in the train list or the pool (same
  path, or same bytes under another name) is refused naming file:line of
  both; the generators' splits pass;
- the dose-response slope (per-seed OLS slope, t interval over seeds)
  against a hand-computed case, and its refusals;
- teacher-stage selection from a work dir of epoch checkpoints;
- the gate against the untrained network (paired bootstrap over clips);
- the order data set: labels decided by temporal order only.
"""
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

from amd_mmaction.data.lists import check_video_list
from amd_mmaction.data.overlap import check_disjoint, file_sha256, find_overlaps
from amd_mmaction.data.synthetic_order import (CLASSES, NUM_CLASSES, corner_order, draw_params,
                                               label_of_order, make_order_dataset,
                                               permute_slots, render_order_clip,
                                               reverse_params, twin)
from amd_mmaction.reproduce.runner import check_lists, write_synthetic
from amd_mmaction.reproduce.stats import slope_interval, untrained_margin
from amd_mmaction.reproduce.teacher_stages import select_teacher_stages


@pytest.fixture(scope='module')
def order_data(tmp_path_factory):
    """8 train + 8 pool + 8 val order clips, 8 frames of 32x32."""
    root = str(tmp_path_factory.mktemp('order'))
    return make_order_dataset(root, num_train=8, num_pool=8, num_val=8, num_frames=8,
                              size=32, seed=3)


# -- 1. a validation clip never reaches training ------------------------------
def _lines(path):
    return open(path).read().splitlines()


def test_generated_splits_are_disjoint(order_data, tmp_path):
    d = order_data
    for split in ('train', 'pool', 'val'):
        entries = check_video_list(d[split], d['root'], num_classes=NUM_CLASSES)
        assert len(entries) == 8 and sorted(l for _, l in entries) == list(range(8))
    check_disjoint(d['val'], [d['train'], d['pool']], d['root'])
    # the motion clips' protocol data (write_synthetic): val vs train + pool
    m = write_synthetic(str(tmp_path / 'motion'), dict(num_train=6, num_val=3, num_pool=3,
                                                       num_frames=8, size=32, seed=2000))
    assert len(_lines(m['pool'])) == 9
    assert not find_overlaps(m['val'], [m['train'], m['pool']], m['root'])


def test_validation_clip_in_pool_refused_with_both_lines(order_data, tmp_path):
    d = order_data
    val = _lines(d['val'])
    pool = tmp_path / 'pool.txt'
    # line 3 names val line 2's clip through a detour, unlabeled
    pool.write_text('\n'.join(_lines(d['pool'])[:2]
                              + ['val/../' + val[1].split()[0]] + _lines(d['pool'])[2:]) + '\n')
    lists = dict(root=d['root'], train=d['train'], val=d['val'], pool=str(pool),
                 num_classes=NUM_CLASSES)
    with pytest.raises(ValueError) as err:
        check_lists(str(tmp_path / 'out'), lists)
    msg = str(err.value)
    assert f"{d['val']}:2: validation clip" in msg and f'{pool}:3 ' in msg
    assert 'same path' in msg and 'must never reach' in msg
    assert not osp.exists(tmp_path / 'out' / 'teacher_pool.txt')  # nothing written


def test_same_content_under_another_name_refused(order_data, tmp_path):
    d = order_data
    val = _lines(d['val'])
    copy = osp.join(d['root'], 'copies', 'renamed.webm')
    os.makedirs(osp.dirname(copy), exist_ok=True)
    shutil.copyfile(osp.join(d['root'], val[4].split()[0]), copy)
    train = tmp_path / 'train.txt'
    train.write_text('\n'.join(_lines(d['train']) + ['copies/renamed.webm 4']) + '\n')
    lists = dict(root=d['root'], train=str(train), val=d['val'], num_classes=NUM_CLASSES)
    with pytest.raises(ValueError) as err:
        check_lists(str(tmp_path / 'out'), lists)
    digest = file_sha256(copy)
    assert f"{d['val']}:5: validation clip" in str(err.value)
    assert f'{train}:9 ' in str(err.value) and f'same content (sha256 {digest[:12]})' in str(
        err.value)
    # a different file of the same size is not a duplicate
    with open(copy, 'r+b') as f:
        f.seek(os.path.getsize(copy) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(copy, ns=(1, 1))  # mtime changed: the cached digest is not reused
    assert file_sha256(copy) != digest
    check_lists(str(tmp_path / 'out2'), lists)
    os.remove(copy)


# -- 2. the dose-response slope ------------------------------------------------
# Teacher metric x at three stages: 10, 20, 30 (mean 20; x - mean = -10, 0, +10;
# Sxx = 200). Student metric per seed over the stages, its OLS slope
# sum((x - mean) * y) / Sxx:
#   seed 0: 50, 52, 56 -> (-500 + 0 + 560) / 200 = 0.3
#   seed 1: 40, 45, 44 -> (-400 + 440) / 200 = 0.2
#   seed 2: 60, 60, 68 -> (-600 + 680) / 200 = 0.4
# mean 0.3; sd = sqrt((0 + 0.01 + 0.01) / 2) = 0.1; se = 0.1 / sqrt(3) = 0.0577350;
# t_{0.975, 2} = 4.3026527; half width 0.2484138 -> [0.0515862, 0.5484138].
# Pooled intercept: mean y = 475 / 9 = 52.7778, minus 0.3 x 20 -> 46.7778.
X = {'untrained': 10.0, 'epoch_10': 20.0, 'epoch_20': 30.0}
Y = {'untrained': {0: 50, 1: 40, 2: 60}, 'epoch_10': {0: 52, 1: 45, 2: 60},
     'epoch_20': {0: 56, 1: 44, 2: 68}}


def test_slope_interval_hand_computed():
    r = slope_interval(X, Y)
    assert r['per_seed'] == pytest.approx({0: 0.3, 1: 0.2, 2: 0.4}, abs=1e-12)
    assert r['slope'] == pytest.approx(0.3, abs=1e-12)
    assert r['sd'] == pytest.approx(0.1, abs=1e-12)
    assert r['t'] == pytest.approx((0.0515862, 0.5484138), abs=1e-6)
    assert r['intercept'] == pytest.approx(46.7778, abs=1e-4)
    assert r['holds'] and r['n_seeds'] == 3 and r['n_stages'] == 3
    assert 'per-seed OLS' in r['method']
    # the percentile bootstrap of the three slopes: a resample is all 0.2 (or
    # all 0.4) with probability 1 / 27 = 0.037 > 0.025 -> [0.2, 0.4]
    assert r['bootstrap'] == pytest.approx((0.2, 0.4), abs=1e-9)
    # the same as the pooled OLS slope over the 9 points (same x for every seed)
    xs = np.array([X[s] for s in X for _ in range(3)])
    ys = np.array([Y[s][k] for s in X for k in range(3)])
    assert np.polyfit(xs, ys, 1)[0] == pytest.approx(r['slope'])
    flat = slope_interval(X, {s: {k: 50.0 + k for k in range(3)} for s in X})
    assert flat['slope'] == 0 and not flat['holds']


@pytest.mark.parametrize('x,y,message', [
    ({'a': 1.0}, {'a': {0: 1, 1: 2}}, r'1 teacher stage\(s\).*at least 2 stages'),
    ({'a': 1.0, 'b': 2.0}, {'a': {0: 1}, 'b': {0: 2}}, r'1 seed\(s\) \[0\]: no spread'),
    ({'a': 5.0, 'b': 5.0}, {'a': {0: 1, 1: 2}, 'b': {0: 2, 1: 3}},
     'the teacher metric is the same at every stage'),
    ({'a': 1.0, 'b': 2.0}, {'a': {0: 1, 1: 2}, 'b': {0: 2, 2: 3}},
     r"stage 'b' has seeds \[0, 2\].*same seeds"),
    ({'a': 1.0, 'b': 2.0}, {'a': {0: 1, 1: 2}, 'c': {0: 2, 1: 3}}, r"only in x \['b'\]"),
    ({'a': 1.0, 'b': float('nan')}, {'a': {0: 1, 1: 2}, 'b': {0: 2, 1: 3}}, 'non-finite'),
])
def test_slope_interval_refuses_degenerate_inputs(x, y, message):
    with pytest.raises(ValueError, match=message):
        slope_interval(x, y)


# -- 3. teacher stages from a work dir -----------------------------------------
def _teacher_dir(path, epochs, last):
    os.makedirs(path, exist_ok=True)
    for e in epochs:
        torch.save({'meta': {'epoch': e}, 'state_dict': {'w': torch.zeros(2)}},
                   osp.join(path, f'epoch_{e}.pth'))
    with open(osp.join(path, 'last_checkpoint'), 'w') as f:
        f.write(f'epoch_{last}.pth')
    return str(path)


def test_teacher_stage_selection(tmp_path):
    work = _teacher_dir(tmp_path / 'teacher', [5, 10, 15, 20], 20)
    got = select_teacher_stages(work, ['untrained', 0.25, 10, 'epoch_15', 1.0])
    assert [(s.name, s.epoch) for s in got] == [('untrained', 0), ('epoch_5', 5),
                                                ('epoch_10', 10), ('epoch_15', 15),
                                                ('epoch_20', 20)]
    assert got[0].checkpoint is None
    assert [osp.basename(s.checkpoint) for s in got[1:]] == [
        'epoch_5.pth', 'epoch_10.pth', 'epoch_15.pth', 'epoch_20.pth']
    assert torch.load(got[1].checkpoint)['meta']['epoch'] == 5
    assert [s.epoch for s in select_teacher_stages(work, [0, 'last'])] == [0, 20]
    # fractions of an explicit length (a run stopped early: last_checkpoint is epoch 20)
    assert select_teacher_stages(work, [0.5], total_epochs=40)[0].epoch == 20


@pytest.mark.parametrize('stages,message', [
    ([0, 7, 'epoch_12', 10], r"7 \(epoch 7\), 'epoch_12' \(epoch 12\): no such checkpoint.*"
                             r'saved epochs: \[5, 10, 15, 20\].*max_keep_ckpts=-1'),
    ([0.33], r'0.33 x 20 epochs = 6.6, not a whole epoch'),
    (['untrained', 0], 'both name epoch 0'),
    ([0.5, 10], 'both name epoch 10'),
    ([True], 'expected'),
    (['best'], "teacher stage 'best'"),
    ([1.5], r'must lie in \[0, 1\]'),
    ([], 'no teacher stage'),
])
def test_teacher_stage_selection_refusals(tmp_path, stages, message):
    work = _teacher_dir(tmp_path / 'teacher', [5, 10, 15, 20], 20)
    with pytest.raises(ValueError, match=message):
        select_teacher_stages(work, stages)


def test_teacher_stage_selection_without_last_checkpoint(tmp_path):
    work = str(tmp_path / 'teacher')
    os.makedirs(work)
    torch.save({}, osp.join(work, 'epoch_3.pth'))
    open(osp.join(work, 'epoch_4.pth'), 'wb').close()  # 0 bytes: not a checkpoint
    assert select_teacher_stages(work, [3])[0].epoch == 3
    with pytest.raises(ValueError, match=r'saved epochs: \[3\]'):
        select_teacher_stages(work, [4])
    with pytest.raises(ValueError, match='no last_checkpoint; pass total_epochs'):
        select_teacher_stages(work, [0.5])
    with pytest.raises(FileNotFoundError, match='does not exist'):
        select_teacher_stages(str(tmp_path / 'nowhere'), [0])


# -- 4. the gate against the untrained network ---------------------------------
def test_untrained_margin_hand_made():
    # 20 clips: trained right on all, untrained on the first 10. Per-clip
    # differences: ten 100s, ten 0s -> margin 50. A bootstrap mean is
    # 100 x Binomial(20, 1/2) / 20; its 2.5% / 97.5% quantiles are 6 / 20 and
    # 14 / 20 (P(X <= 5) = 0.021 < 0.025 < P(X <= 6) = 0.058) -> [30, 70].
    trained = np.ones(20, dtype=bool)
    untrained = np.array([1] * 10 + [0] * 10)
    r = untrained_margin(trained, untrained)
    assert r['margin'] == 50 and r['interval'] == (30.0, 70.0) and r['passed']
    assert r['trained_top1'] == 100 and r['untrained_top1'] == 50 and r['n_clips'] == 20
    assert untrained_margin(trained, untrained) == r  # seeded: deterministic
    # paired: both networks right or wrong on the same clips -> no spread at all
    same = untrained_margin(untrained, untrained)
    assert same['margin'] == 0 and same['interval'] == (0.0, 0.0) and not same['passed']
    # every clip one better: the interval is the point
    r = untrained_margin([1, 1, 1, 1], [0, 0, 0, 0])
    assert r['interval'] == (100.0, 100.0) and r['passed']
    # a worse teacher fails; so does a margin whose interval reaches zero
    assert not untrained_margin(untrained, trained)['passed']
    r = untrained_margin([1, 0, 1, 0, 1, 1], [0, 1, 1, 0, 1, 0])
    assert r['margin'] == pytest.approx(100 / 6) and r['interval'][0] < 0 < r['interval'][1]
    assert not r['passed']


@pytest.mark.parametrize('a,b,message', [
    ([1, 0, 1], [1, 0], 'trained_correct has 3 clips, untrained_correct 2'),
    ([1, 2], [1, 0], r'0/1 \(or bool\)'),
    ([[1, 0]], [[1, 0]], '1-D'),
    ([1], [0], '1 validation clip'),
])
def test_untrained_margin_refusals(a, b, message):
    with pytest.raises(ValueError, match=message):
        untrained_margin(a, b)


# -- 5. the order data set ------------------------------------------------------
def test_order_classes_and_twins():
    assert len(CLASSES) == NUM_CLASSES == 8 and len(set(CLASSES)) == 8
    assert corner_order(0) == [0, 1, 2, 3] and corner_order(1) == [0, 3, 2, 1]
    for k in range(NUM_CLASSES):
        assert sorted(corner_order(k)) == [0, 1, 2, 3] and label_of_order(corner_order(k)) == k
        assert twin(k) != k and twin(twin(k)) == k
    assert twin(0) == 7  # clockwise from top-left, backwards: anticlockwise from bottom-left
    with pytest.raises(ValueError, match='not a class'):
        label_of_order([0, 2, 1, 3])


def test_order_frames_reversed_and_permuted_are_other_classes():
    """A clip of class k played backwards is, frame for frame, the clip of its
    twin; with its slots rearranged it is the clip of any class k': the set
    of frames never tells the class."""
    rng = np.random.default_rng(0)
    for trial in range(3):
        p = draw_params(rng, 32, actors=(2, 2), distractors=(2, 2))
        for k in range(NUM_CLASSES):
            clip = render_order_clip(k, p, 8)
            assert np.array_equal(render_order_clip(twin(k), reverse_params(p), 8), clip[::-1])
            for k2 in range(NUM_CLASSES):
                perm = [corner_order(k).index(c) for c in corner_order(k2)]
                frames = np.concatenate([clip[2 * i:2 * i + 2] for i in perm])
                assert np.array_equal(render_order_clip(k2, permute_slots(p, perm), 8), frames)
                if k2 != k:
                    assert not np.array_equal(render_order_clip(k2, p, 8), clip)


def _ridge_top1(train_x, train_y, test_x, test_y, lam=10.0):
    """One-vs-rest ridge classifier on standardised features (closed form)."""
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-9
    a = np.c_[(train_x - mu) / sd, np.ones(len(train_x))]
    b = np.c_[(test_x - mu) / sd, np.ones(len(test_x))]
    w = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ np.eye(NUM_CLASSES)[train_y])
    return float((np.argmax(b @ w, 1) == test_y).mean())


def _order_free(clips):
    """Mean and spread over frames of 8x8-pooled RGB: any frame order gives the same."""
    n, t, s, _, c = clips.shape
    pooled = clips.reshape(n, t, 8, s // 8, 8, s // 8, c).mean((3, 5))
    return np.concatenate([pooled.mean(1).reshape(n, -1), pooled.std(1).reshape(n, -1)], 1)


def _order_aware(clips):
    """Frame differences in time order: per quarter of the clip, where its mean
    frame differs from the clip's median frame (the centroid, centred)."""
    n, t, s = clips.shape[:3]
    gray = clips.mean(-1)
    change = np.abs(gray.reshape(n, 4, t // 4, s, s).mean(2) - np.median(gray, 1)[:, None])
    yy, xx = np.mgrid[0:s, 0:s]
    mass = change.sum((2, 3)) + 1e-9
    cx, cy = (change * xx).sum((2, 3)) / mass, (change * yy).sum((2, 3)) / mass
    return np.concatenate([cx - cx.mean(1, keepdims=True), cy - cy.mean(1, keepdims=True)], 1)


def test_order_label_unreadable_without_order():
    """192 clips (128 to fit, 64 to score, 8 classes: chance 12.5%): an
    order-free classifier stays near chance, an order-aware one reads the
    label, and the same order-aware classifier on shuffled frames cannot."""
    rng = np.random.default_rng(1)
    labels = np.arange(192) % NUM_CLASSES
    clips = np.stack([render_order_clip(k, draw_params(rng, 32), 24)
                      for k in labels]).astype(np.float64)
    shuffled = np.stack([c[rng.permutation(len(c))] for c in clips])
    fit, score = slice(0, 128), slice(128, None)
    free = _order_free(clips)
    assert np.allclose(free, _order_free(shuffled))
    free_top1 = _ridge_top1(free[fit], labels[fit], free[score], labels[score])
    aware, aware_shuffled = _order_aware(clips), _order_aware(shuffled)
    aware_top1 = _ridge_top1(aware[fit], labels[fit], aware[score], labels[score])
    shuffled_top1 = _ridge_top1(aware[fit], labels[fit], aware_shuffled[score], labels[score])
    refit_top1 = _ridge_top1(aware_shuffled[fit], labels[fit], aware_shuffled[score],
                             labels[score])
    assert free_top1 <= 0.3, free_top1
    assert aware_top1 >= 0.6, aware_top1
    assert shuffled_top1 <= 0.3 and refit_top1 <= 0.3, (shuffled_top1, refit_top1)


def test_order_dataset_files_match_renders(order_data):
    """The written videos are the rendered clips (VP9, lossy: close, not equal),
    and the generator refuses bad sizes before writing."""
    import av
    d = order_data
    rel, label = _lines(d['val'])[0].split()
    with av.open(osp.join(d['root'], rel)) as c:
        decoded = np.stack([f.to_ndarray(format='rgb24') for f in c.decode(video=0)])
    rng = np.random.default_rng(np.random.SeedSequence(3).spawn(3)[2])  # the val stream
    clip = render_order_clip(int(label), draw_params(rng, 32), 8)
    assert decoded.shape == clip.shape
    assert np.abs(decoded.astype(float) - clip).mean() < 12
    assert osp.isfile(d['classes']) and d['num_classes'] == 8
    with pytest.raises(ValueError, match='multiple of 4'):
        make_order_dataset(str(osp.dirname(d['train'])) + '_bad', num_frames=10)
    with pytest.raises(ValueError, match='num_pool'):
        make_order_dataset(str(osp.dirname(d['train'])) + '_bad', num_pool=-1)
