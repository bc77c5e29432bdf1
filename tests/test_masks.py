import numpy as np
import pytest

from amd_mmaction.masks import AsymmetricTubeMask, check_mask_config, sample_tube_masks


@pytest.mark.parametrize('grid,r_stu,r_tea', [
    ((8, 14, 14), 0.9, 0.75), ((8, 14, 14), 0.9, 0.45), ((8, 14, 14), 0.9, 0.0),
    ((4, 8, 8), 0.9, 0.75), ((1, 14, 14), 0.75, 0.5), ((2, 7, 5), 0.8, 0.3)])
def test_asymmetric_counts_subset_and_tube(grid, r_stu, r_tea):
    t = AsymmetricTubeMask(grid=grid, student_ratio=r_stu, teacher_ratio=r_tea, seed=1)
    cells = grid[1] * grid[2]
    n_stu, n_tea = int(r_stu * cells), int(r_tea * cells)
    seen = set()
    for _ in range(20):
        r = t({})
        stu, tea = r['mask_stu'], r['mask_tea']
        assert stu.dtype == bool and stu.shape == (np.prod(grid),)
        s2, t2 = stu.reshape(grid), tea.reshape(grid)
        # one spatial pattern repeated over time
        assert (s2 == s2[:1]).all() and (t2 == t2[:1]).all()
        assert s2[0].sum() == n_stu and t2[0].sum() == n_tea
        # teacher-masked is inside student-masked: student-visible within teacher-visible
        assert not (tea & ~stu).any()
        diff = stu & ~tea
        assert diff.sum() == grid[0] * (n_stu - n_tea)
        seen.add(stu.tobytes())
    assert len(seen) > 1  # masks vary between samples


def test_paper_default_counts():
    t = AsymmetricTubeMask(grid=(8, 14, 14), student_ratio=0.9, teacher_ratio=0.75, seed=0)
    r = t({})
    vis = (~r['mask_stu']).sum()
    diff = (r['mask_stu'] & ~r['mask_tea']).sum()
    assert (vis, diff, r['mask_stu'].sum()) == (160, 232, 1408)
    assert (~r['mask_tea']).sum() == 392
    assert vis // 8 == 20 and diff // 8 == 29


def test_tube_and_symmetric_modes():
    for mode in ('tube', 'symmetric'):
        r = AsymmetricTubeMask(grid=(8, 14, 14), student_ratio=0.9, mode=mode,
                               teacher_ratio=None if mode == 'tube' else 0.9, seed=0)({})
        assert (r['mask_stu'] == r['mask_tea']).all()
        assert r['mask_stu'].sum() == 8 * 176


@pytest.mark.parametrize('kwargs,msg', [
    (dict(student_ratio=0.75, teacher_ratio=0.9), 'must be <'),
    (dict(student_ratio=0.75, teacher_ratio=0.75), 'must be <'),
    (dict(student_ratio=1.0, teacher_ratio=0.5), r'\[0, 1\)'),
    (dict(student_ratio=0.9, teacher_ratio=-0.1), r'\[0, 1\)'),
    (dict(student_ratio=0.9, teacher_ratio=None), 'needs teacher_ratio'),
    (dict(student_ratio=0.9, teacher_ratio=0.75, grid=(2, 2, 2)), 'same count'),
    (dict(student_ratio=0.1, teacher_ratio=0.0, grid=(2, 2, 2)), 'masks no cell'),
    (dict(student_ratio=0.9, teacher_ratio=0.5, mode='random'), 'not one of'),
])
def test_invalid_settings_raise_at_build(kwargs, msg):
    kwargs = dict(dict(grid=(8, 14, 14)), **kwargs)
    with pytest.raises(ValueError, match=msg):
        AsymmetricTubeMask(**kwargs)


def test_invalid_mask_in_config_fails_at_build():
    from mmaction.registry import TRANSFORMS
    with pytest.raises(ValueError, match='teacher_ratio=0.95'):
        TRANSFORMS.build(dict(type='AsymmetricTubeMask', grid=(8, 14, 14),
                              student_ratio=0.9, teacher_ratio=0.95))


def test_repeated_augment_gives_each_view_its_crop_and_mask():
    from mmaction.registry import TRANSFORMS
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(8)]
    t = TRANSFORMS.build(dict(type='RepeatedAugment', num_views=4, transforms=[
        dict(type='RandomResizedCrop'),
        dict(type='Resize', scale=(32, 32), keep_ratio=False),
        dict(type='Flip', flip_ratio=0.5),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='AsymmetricTubeMask', grid=(4, 4, 4), student_ratio=0.75, teacher_ratio=0.5)]))
    r = t(dict(imgs=frames, img_shape=(48, 64), original_shape=(48, 64), modality='RGB',
               num_clips=1, clip_len=8))
    assert r['imgs'].shape == (4, 3, 8, 32, 32)
    assert r['mask_stu'].shape == (4, 64) and r['mask_tea'].shape == (4, 64)
    assert len({m.tobytes() for m in r['mask_stu']}) > 1
    assert not np.allclose(r['imgs'][0], r['imgs'][1])
    # the decoded frames are untouched (in-place transforms got copies)
    assert frames[0].shape == (48, 64, 3)


def test_sample_tube_masks_is_a_pure_function_of_rng():
    a = sample_tube_masks((2, 4, 4), 12, 8, np.random.default_rng(3))
    b = sample_tube_masks((2, 4, 4), 12, 8, np.random.default_rng(3))
    assert all((x == y).all() for x, y in zip(a, b))
    assert check_mask_config((8, 14, 14), 'asymmetric', 0.9, 0.75) == (196, 176, 147)
