"""The reconstruction grid and the loss-curve plot, from a real (tiny)
training run's checkpoint and logs."""
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from amd_mmaction.heads import ReconstructionHead, patchify, tubelet_target, unnormalise
from amd_mmaction.visualization import read_scalars

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools'))


@pytest.fixture(scope='module')
def trained(motion_data, tmp_path_factory):
    from conftest import tiny_config
    work = tmp_path_factory.mktemp('vis_run')
    cfg = tiny_config('videomae_student_tiny_motion.py', motion_data, work, **{
        'model.student.depth': 1, 'model.decoder.depth': 1, 'train_cfg.max_epochs': 2,
        'default_hooks.checkpoint.interval': 2})
    Runner.from_cfg(cfg).train()
    config = str(work / 'tiny.py')
    cfg.dump(config)
    return dict(work=str(work), config=config, ckpt=str(work / 'epoch_2.pth'))


@pytest.mark.parametrize('norm', ['channel', 'patch'])
def test_unnormalise_inverts_the_loss_target(norm):
    pixels = torch.rand(1, 3, 4, 16, 16)
    target = tubelet_target(pixels, 2, 8, norm=norm)[0]  # (N, 2*8*8*3)
    tok = patchify(pixels, 2, 8)[0]  # (N, 128, 3)
    assert torch.allclose(unnormalise(target, tok, norm), tok, atol=1e-4)


@pytest.mark.parametrize('norm', ['channel', 'patch', 'none'])
def test_head_owns_patchify_target_and_loss(norm):
    head = ReconstructionHead(target_norm=norm, tubelet_size=2, patch_size=8)
    pixels = torch.rand(2, 3, 4, 16, 16)
    tok = head.patchify(pixels)
    assert tok.shape == (2, 8, 128, 3)
    assert torch.equal(head.unpatchify(tok, pixels.shape[1:]), pixels)  # exact round trip
    # token 5 = (t 1, h 0, w 1): its first value is pixel (c 0, t 2, y 0, x 8)
    assert tok[1, 5, 0, 0] == pixels[1, 0, 2, 0, 8]
    assert torch.equal(head.target(pixels), tubelet_target(pixels, 2, 8, norm=norm))
    mask_idx = torch.tensor([[0, 3, 6], [1, 2, 7]])
    pred = torch.randn(2, 3, 384)
    want = ((pred - head.target(pixels).gather(
        1, mask_idx[..., None].expand(-1, -1, 384))) ** 2).mean()
    torch.testing.assert_close(head.loss(pred, pixels, mask_idx), want)


def test_reconstruction_png(trained, motion_data, tmp_path):
    import visualize_reconstruction
    video = osp.join(motion_data['root'], 'val', 'val_00000.webm')
    out = str(tmp_path / 'grid.png')
    visualize_reconstruction.main([trained['config'], trained['ckpt'], video, '--out', out])
    img = cv2.imread(out)[..., ::-1]
    # 5 rows of 8 frames, 64 px x scale 3, 2 px gaps, 170 px labels
    assert img.shape == (5 * (192 + 2) + 2, 170 + 8 * (192 + 2) + 2, 3)
    rows = [img[2 + r * 194: 2 + r * 194 + 192, 172:] for r in range(5)]
    grey = np.all(rows[1] == 128, axis=-1).mean()  # student: 90% hidden
    assert 0.8 < grey < 0.95, grey
    diff_shown = 1 - np.all(rows[2] == 128, axis=-1).mean()  # 90% - 75% of cells
    assert 0.1 < diff_shown < 0.2, diff_shown
    visible = ~np.all(rows[1] == 128, axis=-1)
    assert np.array_equal(rows[4][visible], rows[0][visible])  # pasted from the input
    assert not np.array_equal(rows[4], rows[0])  # the rest is predicted


def test_reconstruction_rejects_foreign_checkpoint(trained, motion_data, tmp_path):
    from amd_mmaction.visualization import load_pretrainer
    bad = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'head.fc.weight': torch.zeros(2, 2)}}, bad)
    with pytest.raises(ValueError, match=f"checkpoint '{bad}' lacks .* weights of the student"):
        load_pretrainer(trained['config'], bad)


def test_loss_curves_png(trained, tmp_path):
    import plot_loss_curves
    series = read_scalars([trained['work']])
    assert sorted(series['loss_recon']) == list(range(1, 7))  # 2 epochs x 3 iterations
    out = str(tmp_path / 'curves.png')
    plot_loss_curves.main([trained['work'], '--out', out, '--width', '6', '--height', '3'])
    img = cv2.imread(out)
    assert img.shape == (300, 600, 3) and img.std() > 5
    with pytest.raises(KeyError, match="have no \\['loss_dir'\\] values"):
        plot_loss_curves.main([trained['work'], '--out', out, '--keys', 'loss_dir', '--force'])
