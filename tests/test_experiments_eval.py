"""Evaluation pieces of the reproduction protocol (amd_mmaction/reproduce):
paired statistics, k-NN, linear probe, the teacher gate, frozen features
from real checkpoints on real VP9 clips."""
import math
import os.path as osp

import numpy as np
import pytest
import torch

from conftest import CONFIGS, tiny_config
from amd_mmaction.reproduce import stats
from amd_mmaction.reproduce.gate import (gate_masks, mask_ratio_of, reconstruction_losses,
                                           run_teacher_gate, teacher_gate)
from amd_mmaction.reproduce.features import build_pretrainer, extract_features, iter_clips
from amd_mmaction.reproduce.knn import knn_predict, knn_top1
from amd_mmaction.reproduce.linear import linear_probe

TEACHER = osp.join(CONFIGS, 'tiny', 'videomae_teacher_tiny_motion.py')
STUDENT = osp.join(CONFIGS, 'tiny', 'amd_tiny_motion.py')


# -- statistics ---------------------------------------------------------------
def test_paired_t_interval_hand_computed():
    a = {s: 10.0 + d for s, d in enumerate([1, 2, 3, 4, 5])}
    b = {s: 10.0 for s in range(5)}
    r = stats.paired_stats(a, b)
    assert r['diffs'] == [1, 2, 3, 4, 5] and r['n'] == 5
    assert r['mean'] == pytest.approx(3.0)
    assert r['sd'] == pytest.approx(1.5811, abs=1e-4)
    # t_{0.975,4} = 2.7764: 3 -/+ 2.7764 * 1.5811 / sqrt(5)
    assert r['t'] == pytest.approx((1.0368, 4.9632), abs=1e-4)
    assert r['holds'] and r['reason'] is None and r['method'] == 'paired t'
    assert stats.format_diff(r) == '+3.0 [+1.0, +5.0] (paired t, n=5)'
    # Percentile bootstrap ignores the sd's uncertainty: narrower, same centre.
    lo, hi = r['bootstrap']
    assert r['t'][0] < lo < 3 < hi < r['t'][1]
    assert stats.format_diff(r, 2, 'bootstrap').endswith('(bootstrap, n=5)')


def test_paired_stats_edge_cases():
    # An interval that straddles zero, and a negative mean: no claim.
    r = stats.paired_stats({0: 1.0, 1: -0.5, 2: 2.0}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert r['t'][0] < 0 < r['t'][1] and not r['holds']
    assert not stats.paired_stats({0: 0.0, 1: 1.0}, {0: 2.0, 1: 3.5})['holds']
    one = stats.paired_stats({3: 5.0}, {3: 1.0})
    assert one['t'] is None and one['bootstrap'] is None and not one['holds']
    assert 'n=1' in one['reason']
    assert stats.format_diff(one) == '+4.0 (n=1: no interval)'
    with pytest.raises(ValueError, match=r'only in A \[2\]'):
        stats.paired_stats({0: 1, 2: 1}, {0: 1})


def test_bootstrap_deterministic_and_covers():
    d = [0.3, 2.0, -1.0, 4.0, 1.5, 0.7]
    assert stats.bootstrap_interval(d, seed=1) == stats.bootstrap_interval(d, seed=1)
    assert stats.bootstrap_interval(d, seed=1) != stats.bootstrap_interval(d, seed=2)
    # Coverage sanity: samples of 30 from N(1, 2); both 95% intervals
    # should contain the true mean about 95% of the time.
    rng = np.random.default_rng(0)
    hits = np.zeros(2)
    trials = 300
    for i in range(trials):
        x = rng.normal(1.0, 2.0, 30)
        for j, iv in enumerate((stats.paired_t_interval(x),
                                stats.bootstrap_interval(x, resamples=1000, seed=i))):
            hits[j] += iv[0] <= 1.0 <= iv[1]
    assert 0.90 <= hits[0] / trials <= 0.99, hits
    assert 0.88 <= hits[1] / trials <= 0.99, hits


# -- k-NN ------------------------------------------------------------------------
def _two_clusters():
    e0, e1 = torch.eye(4)[0], torch.eye(4)[1]
    train = torch.stack([e0, e0 + 0.1 * e1, e0 - 0.1 * e1, e1, e1 + 0.1 * e0, e1 - 0.1 * e0])
    return train, torch.tensor([0, 0, 0, 1, 1, 1]), e0, e1


def test_knn_known_answers():
    train, labels, e0, e1 = _two_clusters()
    test = torch.stack([3 * e0, e1 + 0.05 * e0])  # the scale does not matter (cosine)
    assert knn_top1(train, labels, test, torch.tensor([0, 1]), k=3) == 100.0
    # A point of class 0 lying nearer class 1 is classified as class 1.
    assert knn_top1(train, labels, (0.3 * e0 + e1)[None], torch.tensor([0]), k=3) == 0.0
    # k beyond the train set is clipped; the similarity weighting still lets
    # the single nearest class-1 clip outvote three far class-0 clips ...
    few = torch.stack([e0, e0, e0, e1])
    y = torch.tensor([0, 0, 0, 1])
    assert knn_predict(few, y, (e1 + 0.01 * e0)[None], k=50).tolist() == [1]
    # ... which a plain majority vote (huge temperature) would not.
    assert knn_predict(few, y, (e1 + 0.01 * e0)[None], k=50, temperature=1e6).tolist() == [0]


def test_knn_multiview_averages_normalised_views():
    train, labels, e0, e1 = _two_clusters()
    # One long view near class 1, two unit views on class 0: averaging the
    # normalised views says class 0 (raw averaging would say class 1).
    clip = torch.stack([10 * e1, e0, e0])[None]
    assert knn_predict(train, labels, clip, k=1).tolist() == [0]
    multi_train = torch.stack([train, train], 1)  # (N, V, C) on the train side too
    assert knn_predict(multi_train, labels, clip, k=1).tolist() == [0]


# -- linear probe ---------------------------------------------------------------
def test_linear_probe_separable_and_random_labels():
    g = torch.Generator().manual_seed(0)
    centres = 4 * torch.randn(3, 16, generator=g)

    def sample(n, views=2):
        y = torch.arange(n) % 3
        return centres[y][:, None] + torch.randn(n, views, 16, generator=g), y

    xtr, ytr = sample(60)
    xte, yte = sample(30)
    r = linear_probe(xtr, ytr, xte, yte)
    assert r['top1'] == 100.0 and r['train_top1'] == 100.0
    assert linear_probe(xtr, ytr, xte, yte) == r  # deterministic
    # Random labels on noise: fits the train set, at chance on new clips.
    noise = torch.randn(300, 20, generator=g)
    rand = linear_probe(noise, torch.randint(0, 3, (300,), generator=g),
                        torch.randn(900, 20, generator=g),
                        torch.randint(0, 3, (900,), generator=g))
    assert rand['train_top1'] > 45
    assert abs(rand['top1'] - 100 / 3) < 6, rand


# -- the gate on numbers ----------------------------------------------------------
def test_teacher_gate_on_crafted_numbers():
    ok = teacher_gate(recon=0.80, trivial=1.0, probe_top1=60.0, num_classes=6)
    assert ok['passed'] and ok['reasons'] == [] and ok['chance'] == pytest.approx(100 / 6)
    assert ok['recon_ratio'] == pytest.approx(0.8)
    assert teacher_gate(0.9, 1.0, 50.0, 6)['passed']  # both bounds are inclusive
    r = teacher_gate(0.95, 1.0, 60.0, 6)
    assert not r['passed'] and len(r['reasons']) == 1 and 'ratio 0.950' in r['reasons'][0]
    r = teacher_gate(0.5, 1.0, 49.9, 6)
    assert not r['passed'] and '49.9% < 3.0 x chance' in r['reasons'][0]
    assert len(teacher_gate(float('nan'), 1.0, 20.0, 6)['reasons']) == 2
    assert teacher_gate(0.95, 1.0, 60.0, 6, margin=0.96)['passed']
    with pytest.raises(ValueError, match='could never pass'):
        teacher_gate(0.5, 1.0, 90.0, num_classes=2)


# -- real checkpoints, real clips ------------------------------------------------
@pytest.fixture(scope='module')
def ckpts(motion_data, tmp_path_factory):
    """Real pre-training checkpoints after one Runner epoch: the tiny VideoMAE
    teacher as protocol v2 trains it (raw 0-1 targets, tube mask 0.75: options
    that only the checkpoint's saved config knows) and an AMD student (with
    aligner.* keys; random teacher)."""
    from mmengine.runner import Runner
    mask = 'train_dataloader.dataset.pipeline.3.transforms.3'
    v2 = {'model.head.target_norm': 'none', f'{mask}.mode': 'tube',
          f'{mask}.student_ratio': 0.75}
    out = {}
    for name, config, extra in (('teacher', 'videomae_teacher_tiny_motion.py', v2),
                                ('amd', 'amd_tiny_motion.py',
                                 {'model.teacher.checkpoint': None})):
        work = tmp_path_factory.mktemp(name)
        cfg = tiny_config(config, motion_data, work, **{'train_cfg.max_epochs': 1}, **extra)
        Runner.from_cfg(cfg).train()
        out[name] = str(work / 'epoch_1.pth')
    return out


def test_features_from_checkpoints(motion_data, ckpts):
    val, root = motion_data['val'], motion_data['root']
    f, y = extract_features(val, root, TEACHER, ckpts['teacher'], batch_size=4)
    assert f.shape == (6, 6, 128) and f.dtype == torch.float32  # 2 clips x 3 crops
    assert y.tolist() == [0, 1, 2, 3, 4, 5]
    again, _ = extract_features(val, root, TEACHER, ckpts['teacher'], batch_size=3)
    assert torch.allclose(f, again, atol=1e-5)  # deterministic, batch-independent
    fresh, _ = extract_features(val, root, TEACHER, None, init_seed=0)
    other, _ = extract_features(val, root, TEACHER, None, init_seed=1)
    assert (f - fresh).abs().max() > 1e-2 and (fresh - other).abs().max() > 1e-2
    # After the final LayerNorm (fresh: weight 1, bias 0) every token has
    # zero mean over channels, so has their mean; raw block outputs do not.
    assert fresh.mean(-1).abs().max() < 1e-5
    s, _ = extract_features(val, root, STUDENT, ckpts['amd'])  # aligner.* is skipped
    assert s.shape == (6, 6, 96)


def test_checkpoint_errors_name_the_file(ckpts, tmp_path):
    with pytest.raises(ValueError, match=r'epoch_1\.pth does not fit the model of .*amd_tiny'):
        build_pretrainer(STUDENT, ckpts['teacher'])  # 128-wide teacher into a 96-wide student
    bare = str(tmp_path / 'bare.pth')
    torch.save({'encoder.blocks.0.x': torch.zeros(1)}, bare)
    with pytest.raises(ValueError, match=r'bare\.pth: no student\.\* keys'):
        build_pretrainer(TEACHER, bare)
    with pytest.raises(ValueError, match=r'bare\.pth carries no training config'):
        build_pretrainer(None, bare)


def _trivial_by_hand(clips, masks, norm):
    """The trivial predictor's MSE, token by token in numpy (float32 like
    the model: float64 differs by ~4e-5 on near-constant tubelets)."""
    total, count = 0.0, 0
    for clip, clip_masks in zip(clips, masks):
        for view, view_masks in zip(clip.numpy().astype(np.float32) / np.float32(255), clip_masks):
            C, T, H, W = view.shape
            for mask in view_masks.numpy():
                hidden = mask.reshape(T // 2, H // 8, W // 8)
                tokens = [(view[:, 2 * t:2 * t + 2, 8 * h:8 * h + 8, 8 * w:8 * w + 8]
                           .reshape(C, -1), bool(hidden[t, h, w]))
                          for t in range(T // 2) for h in range(H // 8) for w in range(W // 8)]
                vis_mean = np.concatenate([v for v, hid in tokens if not hid], 1).mean(1)
                for v, hid in tokens:
                    if not hid:
                        continue
                    if norm == 'channel':
                        sd = v.std(1, ddof=1, keepdims=True)
                        z = (v - v.mean(1, keepdims=True)) / (sd + 1e-6)
                    else:
                        z = v - vis_mean[:, None]
                    total += float((z ** 2).sum())
                    count += z.size
    return total / count


def test_gate_trivial_loss_on_real_model_and_clips(motion_data, ckpts):
    val, root = motion_data['val'], motion_data['root']
    assert mask_ratio_of(TEACHER) == 0.9
    model = build_pretrainer(TEACHER, ckpts['teacher'])
    clips = [c for batch, _ in iter_clips(val, root) for c in batch]
    masks = gate_masks(len(clips), clips[0].shape[0], 1, model.student.grid, 0.9, seed=3)
    assert (masks.sum(-1) == 4 * int(0.9 * 64)).all()
    r = reconstruction_losses(model, val, root, 0.9, num_masks=1, seed=3, batch_size=4)
    assert r['target_norm'] == 'channel' and r['values_per_norm'] == 128
    assert r['trivial'] == pytest.approx(_trivial_by_hand(clips, masks, 'channel'), rel=1e-5)
    # Zeros against unit-variance tubelets: (n-1)/n, a little less when a
    # tubelet is constant (the flat shape), never more.
    assert r['trivial_zero_bound'] == pytest.approx(127 / 128)
    assert 0.9 < r['trivial'] <= 127 / 128 + 1e-6
    assert math.isfinite(r['recon']) and r['recon'] > 0
    same = reconstruction_losses(model, val, root, 0.9, num_masks=1, seed=3, batch_size=5)
    assert same['recon'] == pytest.approx(r['recon'], rel=1e-5)  # masks follow the clips
    assert same['trivial'] == pytest.approx(r['trivial'], rel=1e-6)
    other = reconstruction_losses(model, val, root, 0.9, num_masks=1, seed=4)
    assert other['recon'] != pytest.approx(r['recon'], rel=1e-6)
    # Raw 0-1 targets, as the checkpoint was trained (its saved config).
    model = build_pretrainer(None, ckpts['teacher'])
    assert mask_ratio_of(None, ckpts['teacher']) == 0.75
    masks = gate_masks(len(clips), clips[0].shape[0], 1, model.student.grid, 0.75, seed=3)
    raw = reconstruction_losses(model, val, root, 0.75, num_masks=1, seed=3, batch_size=4)
    assert raw['target_norm'] == 'none' and raw['trivial_zero_bound'] is None
    assert raw['trivial'] == pytest.approx(_trivial_by_hand(clips, masks, 'none'), rel=1e-5)


def test_run_teacher_gate_end_to_end(motion_data, ckpts):
    r = run_teacher_gate(None, ckpts['teacher'], motion_data, num_masks=1)
    assert set(r) >= {'recon', 'trivial', 'recon_ratio', 'probe_top1', 'chance', 'passed',
                      'reasons', 'target_norm', 'mask_ratio', 'train_probe_top1'}
    assert r['mask_ratio'] == 0.75 and r['target_norm'] == 'none'
    assert r['chance'] == pytest.approx(100 / 6)
    # One epoch on 12 clips: no teacher worth distilling from.
    assert not r['passed'] and r['reasons']
    assert r['recon_ratio'] == pytest.approx(r['recon'] / r['trivial'])
