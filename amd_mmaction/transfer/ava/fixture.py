"""A tiny data set in the AVA v2.x layout, for tests and the demo.

Synthetic "videos" of raw jpg frames with people drawn as moving boxes, and
the AVA files that ``AVADataset`` / ``AVAMetric`` read:

    <root>/rawframes/<video_id>/img_00001.jpg ...
    <root>/annotations/ava_{train,val}_tiny.csv        (GT, normalised boxes)
    <root>/annotations/ava_{train,val}_excluded_timestamps_tiny.csv
    <root>/annotations/ava_dense_proposals_{train,val}_tiny.pkl
    <root>/annotations/ava_action_list_tiny.pbtxt

Actions are learnable from what is drawn inside each person box: *stand*
(12) people are tall and warm-coloured, *sit* (11) ones squat and cool,
*walk* (14) ones move fast with striped legs, *carry/hold* (17) ones hold a
white square. The label map also
lists *watch (a person)* (80), which no ground truth uses: the evaluation
then meets a class without ground truth (its AP is NaN and left out of the
mean). The last keyframe of the first val video is listed as excluded and,
as in AVA, has no annotation rows. Proposals are the GT boxes jittered (IoU mostly > 0.9, detector
scores 0.92..0.99) plus a spurious low-score box that ``AVADataset`` drops
with ``person_det_score_thr=0.9``. Keyframes are at seconds 902, 903, ...
(AVA's range starts at 902) with frames counted from second 900 at 30 fps,
named ``img_{:05d}.jpg`` from 1, as in the real data set.
"""
import os
import os.path as osp
import pickle
from typing import Dict

import numpy as np

ACTIONS = {11: 'sit', 12: 'stand', 14: 'walk', 17: 'carry/hold (an object)',
           80: 'watch (a person)'}
UNUSED_ACTION = 80


def _person(rng, width, height):
    """Random person track: box size, start position, velocity (px/s).

    RoIAlign resamples every box to the same grid, so the cues are drawn
    inside the box: standing people are warm-coloured (red channel high),
    sitting ones cool (blue high); walkers move fast and have striped legs;
    carriers hold a white square at their chest."""
    tall = bool(rng.random() < 0.5)
    bw = int(rng.integers(12, 18)) if tall else int(rng.integers(20, 28))
    bh = int(rng.integers(32, 44)) if tall else int(rng.integers(16, 22))
    moving = bool(rng.random() < 0.5)
    speed = rng.choice([-1, 1]) * rng.uniform(15, 20) if moving else 0.0
    warm, cool = int(rng.integers(170, 230)), int(rng.integers(30, 80))
    green = int(rng.integers(60, 160))
    # cv2 draws BGR: stand -> (cool, g, warm), sit -> (warm, g, cool)
    color = (cool, green, warm) if tall else (warm, green, cool)
    return dict(size=(bw, bh), x0=rng.uniform(2, width - bw - 2),
                y0=rng.uniform(2, height - bh - 2), vx=speed, tall=tall,
                moving=moving, carry=bool(rng.random() < 0.5), color=color)


def _box_at(p, t, width):
    """Pixel box of person ``p`` at ``t`` seconds (bouncing off the sides)."""
    bw, bh = p['size']
    span = width - bw - 4
    x = (p['x0'] - 2 + p['vx'] * t) % (2 * span)
    x = 2 + (x if x <= span else 2 * span - x)
    return np.array([x, p['y0'], x + bw, p['y0'] + bh])


def _labels(p):
    acts = [12 if p['tall'] else 11]
    if p['moving']:
        acts.append(14)
    if p['carry']:
        acts.append(17)
    return acts


def _draw(frame, p, box):
    import cv2
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    cv2.rectangle(frame, (x1, y1), (x2 - 1, y2 - 1), p['color'], -1)
    cv2.circle(frame, ((x1 + x2) // 2, y1 + 3), 3, (30, 30, 30), -1)
    if p['moving']:  # striped legs
        for x in range(x1, x2, 4):
            cv2.line(frame, (x, (y1 + y2) // 2 + 2), (x, y2 - 1), (20, 20, 20), 1)
    if p['carry']:
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        cv2.rectangle(frame, (cx - 4, cy - 4), (cx + 3, cy + 3), (255, 255, 255), -1)


def _jitter(rng, box, width, height, scale):
    w, h = box[2] - box[0], box[3] - box[1]
    noise = rng.normal(0, scale, 4) * np.array([w, h, w, h])
    out = box + noise
    return np.clip(out, 0, [width, height, width, height])


def make_ava_fixture(root: str, num_train: int = 4, num_val: int = 2,
                     num_keyframes: int = 3, width: int = 96, height: int = 64,
                     fps: int = 30, seed: int = 0) -> Dict:
    """Write the tiny AVA data set under ``root`` and return its paths:
    ``frames`` (data_prefix), ``ann_{train,val}``, ``exclude_{train,val}``,
    ``proposals_{train,val}``, ``label_map``, plus ``timestamp_start``,
    ``timestamp_end``, ``fps``, ``classes`` (id -> name)."""
    import cv2
    rng = np.random.default_rng(seed)
    ts_start = 900
    first_key = 902
    ts_end = first_key + num_keyframes + 1  # frames reach past the last clip
    frames_dir = osp.join(root, 'rawframes')
    ann_dir = osp.join(root, 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    out = dict(root=root, frames=frames_dir, fps=fps, timestamp_start=ts_start,
               timestamp_end=ts_end, classes=dict(ACTIONS),
               label_map=osp.join(ann_dir, 'ava_action_list_tiny.pbtxt'))
    with open(out['label_map'], 'w') as f:
        for aid, name in ACTIONS.items():
            f.write(f'item {{\n  name: "{name}"\n  id: {aid}\n}}\n')
    num_frames = (ts_end - ts_start) * fps
    yy, xx = np.mgrid[0:height, 0:width]
    for split, count in (('train', num_train), ('val', num_val)):
        rows, proposals, excluded = [], {}, []
        for v in range(count):
            vid = f'{split}{v:02d}_tiny'
            people = [_person(rng, width, height) for _ in range(int(rng.integers(1, 3)))]
            vdir = osp.join(frames_dir, vid)
            os.makedirs(vdir, exist_ok=True)
            shade = int(rng.integers(70, 130))
            background = (shade + 25 * np.sin(xx / 7.0 + v) * np.cos(yy / 9.0)).astype(np.uint8)
            background = np.repeat(background[..., None], 3, axis=2)
            for i in range(num_frames):
                t = i / fps
                frame = background.copy()
                for p in people:
                    _draw(frame, p, _box_at(p, t, width))
                cv2.imwrite(osp.join(vdir, f'img_{i + 1:05d}.jpg'), frame,
                            [cv2.IMWRITE_JPEG_QUALITY, 90])
            scale = np.array([width, height, width, height], dtype=np.float64)
            for k in range(num_keyframes):
                ts = first_key + k
                dets = []
                # As in AVA, an excluded timestamp has no annotation rows
                # (ava_eval still counts any it finds as ground truth).
                skip = split == 'val' and v == 0 and k == num_keyframes - 1
                if skip:
                    excluded.append(f'{vid},{ts}')
                for pid, p in enumerate(people):
                    box = _box_at(p, ts - ts_start, width)
                    norm = np.round(box / scale, 3)
                    for aid in ([] if skip else _labels(p)):
                        rows.append(f'{vid},{ts},{norm[0]:.3f},{norm[1]:.3f},'
                                    f'{norm[2]:.3f},{norm[3]:.3f},{aid},{pid}')
                    det = _jitter(rng, box, width, height, 0.02)
                    dets.append(np.r_[det / scale, rng.uniform(0.92, 0.99)])
                spurious = _jitter(rng, np.array([0, 0, width / 3, height / 2]),
                                   width, height, 0.05)
                dets.append(np.r_[spurious / scale, rng.uniform(0.1, 0.5)])
                proposals[f'{vid},{ts:04d}'] = np.clip(np.array(dets), 0, 1)
        out[f'ann_{split}'] = osp.join(ann_dir, f'ava_{split}_tiny.csv')
        out[f'exclude_{split}'] = osp.join(
            ann_dir, f'ava_{split}_excluded_timestamps_tiny.csv')
        out[f'proposals_{split}'] = osp.join(
            ann_dir, f'ava_dense_proposals_{split}_tiny.pkl')
        with open(out[f'ann_{split}'], 'w') as f:
            f.write('\n'.join(rows) + '\n')
        with open(out[f'exclude_{split}'], 'w') as f:
            f.write(''.join(line + '\n' for line in excluded))
        with open(out[f'proposals_{split}'], 'wb') as f:
            pickle.dump(proposals, f)
    return out
