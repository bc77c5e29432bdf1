"""AVA detection transfer: plain-torch RoIAlign against independent
computations, the person RoI head, the token-map backbone, AVAMetric on
numpy 2, and train + eval through the real Runner on the tiny AVA fixture."""
import math
import os.path as osp

import numpy as np
import pytest
import torch

from amd_mmaction.transfer.ava import (PersonRoIHead, ViTTokenMap,
                                       assign_person_rois, box_iou,
                                       boxes_to_frame, make_ava_fixture,
                                       roi_align)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_VIT = dict(img_size=64, patch_size=8, num_frames=8, tubelet_size=2,
                embed_dims=96, depth=4, num_heads=3)


# ---------------------------------------------------------------- RoIAlign
def loop_roi_align(feat, rois, out, scale, ratio, aligned):
    """Slow reference written from the mmcv/torchvision kernel description:
    one bilinear sample at a time."""
    feat = np.asarray(feat, dtype=np.float64)
    _, c, H, W = feat.shape

    def sample(img, y, x):
        if y < -1.0 or y > H or x < -1.0 or x > W:
            return np.zeros(c)
        y, x = max(y, 0.0), max(x, 0.0)
        y0, x0 = int(y), int(x)
        if y0 >= H - 1:
            y0 = y1 = H - 1
            y = float(y0)
        else:
            y1 = y0 + 1
        if x0 >= W - 1:
            x0 = x1 = W - 1
            x = float(x0)
        else:
            x1 = x0 + 1
        ly, lx = y - y0, x - x0
        return ((1 - ly) * (1 - lx) * img[:, y0, x0] + (1 - ly) * lx * img[:, y0, x1]
                + ly * (1 - lx) * img[:, y1, x0] + ly * lx * img[:, y1, x1])

    res = np.zeros((len(rois), c, out, out))
    for k, (b, x1, y1, x2, y2) in enumerate(np.asarray(rois, dtype=np.float64)):
        off = 0.5 if aligned else 0.0
        sx, sy = x1 * scale - off, y1 * scale - off
        rw, rh = x2 * scale - off - sx, y2 * scale - off - sy
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bw, bh = rw / out, rh / out
        gh = ratio if ratio > 0 else math.ceil(rh / out)
        gw = ratio if ratio > 0 else math.ceil(rw / out)
        for ph in range(out):
            for pw in range(out):
                acc = np.zeros(c)
                for iy in range(gh):
                    for ix in range(gw):
                        acc += sample(feat[int(b)], sy + ph * bh + (iy + 0.5) * bh / gh,
                                      sx + pw * bw + (ix + 0.5) * bw / gw)
                res[k, :, ph, pw] = acc / max(gh * gw, 1)
    return res


ROIS = torch.tensor([
    [0, 4, 6, 60, 50],          # inside
    [1, -10, -8, 30, 20],       # over the top-left border
    [0, 100, 90, 200, 180],     # over the bottom-right border
    [1, 30.3, 20.7, 31, 21],    # smaller than a feature pixel
    [0, 0, 0, 176, 144],        # whole map
    [1, 50, 40, 50, 40],        # degenerate
    [1, 300, 300, 400, 400],    # outside
], dtype=torch.float64)


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('ratio', [0, 1, 2, 3])
def test_roi_align_matches_loop_reference(aligned, ratio):
    feat = torch.randn(2, 3, 9, 11, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(ratio))
    got = roi_align(feat, ROIS, 4, 1 / 16, ratio, aligned)
    want = loop_roi_align(feat.numpy(), ROIS.numpy(), 4, 1 / 16, ratio, aligned)
    assert got.shape == (len(ROIS), 3, 4, 4)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
    assert got[-1].abs().max() == 0  # the box outside the map reads nothing


def test_roi_align_is_exact_on_a_linear_map():
    # f(y, x) = 2y - 3x + 1 on pixel centres: bilinear sampling reproduces it,
    # so each bin's average is f at the bin centre (aligned: pixel i is at i+0.5).
    h, w, scale = 12, 16, 0.5
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing='ij')
    feat = (2 * ys - 3 * xs + 1)[None, None]
    boxes = torch.tensor([[0, 4, 6, 20, 18], [0, 3.3, 2.1, 28.7, 21.9]], dtype=torch.float64)
    out = roi_align(feat, boxes, (3, 5), scale, sampling_ratio=2, aligned=True)
    for k, (_, x1, y1, x2, y2) in enumerate(boxes.tolist()):
        cy = y1 * scale - 0.5 + (torch.arange(3, dtype=torch.float64) + 0.5) * (y2 - y1) * scale / 3
        cx = x1 * scale - 0.5 + (torch.arange(5, dtype=torch.float64) + 0.5) * (x2 - x1) * scale / 5
        want = 2 * cy[:, None] - 3 * cx[None] + 1
        torch.testing.assert_close(out[k, 0], want, atol=1e-12, rtol=0)


def test_roi_align_gradient_and_errors():
    feat = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 1.5, 2.0, 40.0, 30.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: roi_align(f, rois, 2, 1 / 8, 0, True), (feat,))
    with torch.autocast('cpu', dtype=torch.bfloat16):  # as under AMP
        half = roi_align(feat.float(), rois.float(), 2, 1 / 8)
    torch.testing.assert_close(half.float(), roi_align(feat, rois, 2, 1 / 8).float(),
                               atol=0.05, rtol=0.05)
    with pytest.raises(ValueError, match='rois'):
        roi_align(feat, rois[:, :4], 2)
    with pytest.raises(ValueError, match='batch indices'):
        roi_align(feat, torch.tensor([[3.0, 0, 0, 8, 8]], dtype=torch.float64), 2)


# ------------------------------------------------------------- head, assigner
def test_person_roi_head_pooling_and_loss():
    torch.manual_seed(0)
    feat = torch.randn(2, 16, 4, 8, 12)
    rois = torch.tensor([[0, 0, 0, 40, 60], [1, 10, 5, 90, 64], [1, 30, 20, 50, 40.]])
    head = PersonRoIHead(16, num_classes=81, roi_size=8, featmap_stride=8,
                         dropout_ratio=0.0).eval()
    # Average RoIAlign is linear: pooling time first equals pooling per slice.
    per_slice = torch.stack([roi_align(feat[:, :, t], rois, 8, 1 / 8) for t in range(4)], 2)
    torch.testing.assert_close(head.roi_features(feat, rois), per_slice.mean(2, keepdim=True))
    logits = head(feat, rois)
    assert logits.shape == (3, 81)
    torch.testing.assert_close(logits, head.fc_cls(per_slice.mean(2).flatten(2).amax(2)))
    head_max = PersonRoIHead(16, featmap_stride=8, temporal_pool='max', dropout_ratio=0.0)
    torch.testing.assert_close(head_max.roi_features(feat, rois)[:, :, 0], per_slice.amax(2))

    targets = torch.zeros(3, 81)
    targets[0, [0, 12, 14]] = 1   # slot 0 (background) is ignored
    targets[1, 11] = 1
    loss = head.loss(logits, targets)  # row 2 has no action: no loss
    want = torch.nn.functional.binary_cross_entropy_with_logits(logits[:2, 1:], targets[:2, 1:])
    torch.testing.assert_close(loss['loss_action_cls'], want)
    with pytest.raises(ValueError, match='temporal_pool'):
        PersonRoIHead(16, temporal_pool='sum')


def test_assign_person_rois_follows_max_iou_ava():
    gt = torch.tensor([[10., 10, 30, 50], [40, 10, 60, 50]])
    labels = torch.zeros(2, 81)
    labels[0, 12] = labels[1, [11, 17]] = 1
    props = torch.tensor([[10.5, 10, 30, 50], [20, 10, 40, 50], [0, 0, 5, 5]])
    assert box_iou(gt[:1], props[:1]).item() > 0.9
    boxes, targets = assign_person_rois(gt, labels, props, pos_iou_thr=0.9)
    torch.testing.assert_close(boxes, torch.cat([gt, props[:1]]))
    torch.testing.assert_close(targets, labels[[0, 1, 0]])
    boxes, _ = assign_person_rois(gt, labels, props, max_rois=2)
    assert len(boxes) == 2
    with pytest.raises(ValueError, match='multi-hot'):
        assign_person_rois(gt, torch.tensor([12, 11]), props)


def test_boxes_to_frame_inverts_flip_and_crop():
    from mmaction.datasets.transforms import Flip
    norm = np.array([[0.1, 0.2, 0.4, 0.9], [0.5, 0.0, 1.0, 0.5]], dtype=np.float32)
    results = dict(imgs=[np.zeros((64, 96, 3), np.uint8)], img_shape=(64, 96),
                   modality='RGB', gt_bboxes=norm * [96, 64, 96, 64])
    results = Flip(flip_ratio=1.0)(results)
    back = boxes_to_frame(torch.as_tensor(results['gt_bboxes']),
                          dict(img_shape=(64, 96), flip=results['flip']))
    np.testing.assert_allclose(back.numpy(), norm, atol=1e-6)
    crop = dict(img_shape=(32, 48), crop_quadruple=np.array([0.5, 0.25, 0.5, 0.5]))
    back = boxes_to_frame(torch.tensor([[0., 0, 48, 32]]), crop)
    np.testing.assert_allclose(back.numpy(), [[0.5, 0.25, 1.0, 0.75]])


# ------------------------------------------------------------------ backbone
def test_token_map_backbone_layout_and_resized_positions():
    torch.manual_seed(0)
    bb = ViTTokenMap(**TINY_VIT).eval()
    x = torch.randn(1, 3, 8, 64, 64)
    fmap = bb(x)
    assert fmap.shape == (1, 96, 4, 8, 8)
    tokens, _ = super(ViTTokenMap, bb).forward(x)  # VideoViT's token sequence
    # The map is the raster token sequence (t, h, w), final norm included.
    torch.testing.assert_close(fmap.flatten(2).transpose(1, 2), tokens)
    # A wider clip: 8x12 tokens, the position table resized per time slot.
    wide = bb(torch.randn(1, 3, 8, 64, 96))
    assert wide.shape == (1, 96, 4, 8, 12)
    assert bb.position_table(8, 8) is bb.pos_embed
    table = bb.position_table(8, 12)
    assert table.shape == (1, 4 * 8 * 12, 96)
    # Each time slot is resized on its own: changing slot 1 changes only slot 1.
    bb.pos_embed = bb.pos_embed.clone()
    bb.pos_embed[0, 64:128] += 1.0
    changed = (bb.position_table(8, 12) != table).reshape(4, 96, 96).any(-1).any(-1)
    assert changed.tolist() == [False, True, False, False]
    assert torch.isfinite(wide).all()
    # A width that is no multiple of the patch: the last columns are dropped.
    assert bb(torch.randn(1, 3, 8, 64, 63)).shape == (1, 96, 4, 8, 7)
    with pytest.raises(ValueError, match='8 frames'):
        bb(torch.randn(1, 3, 4, 64, 64))


def test_token_map_backbone_loads_an_amd_pretraining_checkpoint(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from amd_mmaction.student.vit import VideoViT
    from mmaction.registry import MODELS
    init_default_scope('mmaction')
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'tiny', 'amd_tiny_motion.py'))
    teacher = VideoViT(**dict(TINY_VIT, embed_dims=128, depth=6, num_heads=4))
    torch.save({'model': {'encoder.' + k: v for k, v in teacher.state_dict().items()}},
               tmp_path / 'teacher.pth')
    cfg.model.teacher.checkpoint = str(tmp_path / 'teacher.pth')
    amd = MODELS.build(cfg.model)
    torch.save({'state_dict': amd.state_dict(), 'meta': {}}, tmp_path / 'amd.pth')
    bb = ViTTokenMap(pretrained=str(tmp_path / 'amd.pth'), **TINY_VIT)
    bb.init_weights()
    own = bb.state_dict()
    for k, v in amd.student.state_dict().items():
        torch.testing.assert_close(own[k], v, msg=k)
    with pytest.raises(ValueError, match='blocks'):
        ViTTokenMap(pretrained=str(tmp_path / 'amd.pth'),
                    **dict(TINY_VIT, depth=2)).init_weights()


# --------------------------------------------------------- data + evaluation
@pytest.fixture(scope='module')
def ava_data(tmp_path_factory):
    return make_ava_fixture(str(tmp_path_factory.mktemp('ava')))


def test_fixture_is_read_by_ava_dataset(ava_data):
    from mmaction.datasets import AVADataset
    ds = AVADataset(ann_file=ava_data['ann_val'], exclude_file=ava_data['exclude_val'],
                    label_file=ava_data['label_map'], proposal_file=ava_data['proposals_val'],
                    data_prefix=dict(img=ava_data['frames']), pipeline=[],
                    timestamp_start=900, timestamp_end=ava_data['timestamp_end'],
                    test_mode=True)
    assert len(ds) == 2 * 3 - 1  # one excluded keyframe
    info = ds.get_data_info(0)
    assert info['gt_labels'].shape[1] == 81 and info['gt_labels'][:, [11, 12]].sum() > 0
    # Spurious low-score detections are dropped at person_det_score_thr=0.9.
    assert (info['scores'] >= 0.9).all() and len(info['proposals']) == len(info['gt_bboxes'])
    assert osp.isfile(osp.join(info['frame_dir'], 'img_00001.jpg'))


def _ava_metric_on(ava_data, tmp_path, monkeypatch, pred_fn):
    from mmaction.evaluation import AVAMetric
    from mmaction.evaluation.functional.ava_utils import read_csv
    monkeypatch.chdir(tmp_path)  # AVAMetric writes its result csv to the cwd
    boxes, labels, _ = read_csv(open(ava_data['ann_val']))
    metric = AVAMetric(ann_file=ava_data['ann_val'], exclude_file=ava_data['exclude_val'],
                       label_file=ava_data['label_map'])
    samples = []
    for key in boxes:
        vid, ts = key.split(',')
        uniq = sorted({tuple(b) for b in boxes[key]})
        yxyx = torch.tensor(uniq)
        scores = torch.zeros(len(uniq), 81)
        for b, lab in zip(boxes[key], labels[key]):
            scores[uniq.index(tuple(b)), lab] = 1.0
        scores = pred_fn(scores)
        samples.append(dict(video_id=vid, timestamp=int(ts), pred_instances=dict(
            bboxes=yxyx[:, [1, 0, 3, 2]], scores=scores)))
    metric.process([], samples)
    return metric.evaluate(len(samples))


def test_ava_metric_on_numpy2_with_a_class_without_ground_truth(ava_data, tmp_path, monkeypatch):
    # Class 80 is in the label map, never in the ground truth, and predicted:
    # ava_eval's AP for it is np.NAN (gone in numpy 2, restored by compat).
    def predict(scores):
        scores = scores * 0.9 + 0.05
        scores[:, 80] = 0.5
        return scores
    res = _ava_metric_on(ava_data, tmp_path, monkeypatch, predict)
    assert res['mAP/overall'] == pytest.approx(1.0)
    assert math.isnan(res['mAP/person_interaction'])  # only class 80 lives there
    # Wrong scores give a lower, still finite mAP.
    res = _ava_metric_on(ava_data, tmp_path, monkeypatch, lambda s: 1 - s * 0.9)
    assert 0 < res['mAP/overall'] < 1


def test_ava_tiny_train_and_eval_through_the_runner(ava_data, tmp_path, monkeypatch):
    from mmengine.config import Config
    from mmengine.runner import Runner
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'tiny', 'ava_tiny.py'))
    files = dict(ann_file=('ann_train', 'ann_val'), exclude_file=('exclude_train', 'exclude_val'),
                 proposal_file=('proposals_train', 'proposals_val'),
                 label_file=('label_map', 'label_map'))
    for loader, split in (('train_dataloader', 0), ('val_dataloader', 1)):
        ds = cfg[loader].dataset
        for key, names in files.items():
            ds[key] = ava_data[names[split]]
        ds.data_prefix.img = ava_data['frames']
    for key in ('ann_file', 'exclude_file', 'label_file'):
        cfg.val_evaluator[key] = ds[key]
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    cfg.merge_from_dict({'train_cfg.max_epochs': 1, 'train_cfg.val_begin': 2,
                         'work_dir': str(tmp_path / 'work'),
                         'default_hooks.logger.interval': 1})
    runner = Runner.from_cfg(cfg)
    runner.train()
    loss = runner.message_hub.get_scalar('train/loss_action_cls').current()
    assert math.isfinite(loss) and loss > 0
    metrics = runner.val()
    assert math.isfinite(metrics['mAP/overall']) and 0 <= metrics['mAP/overall'] <= 1


# ------------------------------------------------------------------- configs
def test_paper_configs_parse_and_fastrcnn_route_explains_missing_mmdet():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'ava', 'amd_vit-b_ava_torch-roi.py'))
    assert cfg.model.type == 'AVAPersonDetector'
    assert cfg.model.roi_head.roi_size == 8 and cfg.model.roi_head.num_classes == 81
    assert cfg.model.train_cfg.pos_iou_thr == 0.9
    path = osp.join(ROOT, 'configs', 'ava', 'amd_vit-b_ava_fastrcnn.py')
    fast = Config.fromfile(path, import_custom_modules=False)
    assert (fast.model.type, fast.model.roi_head.type) == ('FastRCNN', 'AVARoIHead')
    assert fast.model.backbone.type == 'mmaction.ViTTokenMap'
    from amd_mmaction.transfer.ava.mmdet_route import missing_parts
    if not missing_parts():
        pytest.skip('mmdet and full mmcv are installed: the route can be built')
    with pytest.raises(RuntimeError, match='mmdet.*amd_vit-b_ava_torch-roi.py'):
        Config.fromfile(path)
