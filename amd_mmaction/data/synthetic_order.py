"""A labeled video data set where only temporal order decides the label
(protocol v3's second data set, docs/protocol_v3_design.md).

Every clip has four time slots of equal length. One or more *actors*
(textured shapes of random colours, textures and sizes, each on its own
square of random centre and size) jump to one corner of their square per
slot and stay there for the slot, visiting all four corners once, all
actors in step. The class is the visiting order: which corner first, and
clockwise or anticlockwise on the screen (4 x 2 = 8 classes).
*Distractors* (smaller textured shapes) move in straight lines from a new
random place, at a new random velocity, in every slot. The background is a
random colour with a random sinusoidal texture.

Why order alone decides the label (tests/test_protocol_v3_parts.py checks
each point on rendered clips):

- every class visits every corner for the same number of frames, so the
  *set* of frames of a clip of class k is, frame for frame, the set of
  frames of a clip of any other class k' (slots permuted, the distractors'
  per-slot draws permuted with them): nothing order-free (mean or spread
  over frames, a bag of frames) can tell the classes apart;
- played backwards, a clip of class k is a valid clip of its *twin*
  (clockwise from c <-> anticlockwise from the last corner visited), never
  of k itself; the distractors' reversed paths are draws of the same law.

Textures, colours, sizes, shapes and positions are drawn independently of
the class. Actors stay still within a slot: no local motion carries the
class, only which corner follows which. Files are written with
:func:`~amd_mmaction.data.synthetic.write_video`; lists follow mmaction2's
``VideoDataset`` format (``<relative path> <label>``): train / pool / val,
from three independent random streams, in separate folders.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from amd_mmaction.data.synthetic import write_video

NUM_SLOTS = 4
CORNERS = ('top-left', 'top-right', 'bottom-right', 'bottom-left')  # clockwise on screen
CORNER_XY = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], dtype=np.float64)  # (x, y), y down
DIRECTIONS = ('clockwise', 'anticlockwise')
CLASSES = tuple(f'{DIRECTIONS[d]} from {CORNERS[c]}' for c in range(4) for d in range(2))
NUM_CLASSES = len(CLASSES)


# -- classes -----------------------------------------------------------------
def corner_order(label: int) -> List[int]:
    """The corners (indices into :data:`CORNERS`) visited in slots 0..3 by
    class ``label = 2 * start corner + direction``."""
    if not 0 <= int(label) < NUM_CLASSES:
        raise ValueError(f'label {label} is outside 0..{NUM_CLASSES - 1}')
    start, direction = divmod(int(label), 2)
    step = 1 if direction == 0 else -1
    return [(start + step * i) % 4 for i in range(NUM_SLOTS)]


def label_of_order(order: Sequence[int]) -> int:
    """The class visiting ``order``; ValueError if no class does."""
    for label in range(NUM_CLASSES):
        if corner_order(label) == [int(c) for c in order]:
            return label
    raise ValueError(f'corner order {list(order)} is not a class: a class visits the four '
                     'corners once, clockwise or anticlockwise')


def twin(label: int) -> int:
    """The class of a clip of class ``label`` played backwards."""
    return label_of_order(corner_order(label)[::-1])


# -- one clip ----------------------------------------------------------------
def _texture(rng: np.random.Generator) -> dict:
    return dict(colors=rng.uniform(0, 255, size=(2, 3)), freq=rng.uniform(0.15, 0.6),
                angle=rng.uniform(0, np.pi), phase=rng.uniform(0, 2 * np.pi))


def draw_params(rng: np.random.Generator, size: int = 64, actors: Tuple[int, int] = (1, 2),
                distractors: Tuple[int, int] = (1, 2)) -> dict:
    """Everything of a clip but its class, drawn from ``rng`` (the class is
    drawn by nobody here: any label renders with the same draws).
    ``actors`` / ``distractors``: (min, max) counts, inclusive."""
    # A faint background texture and actors of 2-3 patches (8 px) across: the
    # masked-pixel loss of a teacher is then mostly about where the actors
    # are, which is what carries the class (the first sizing pilot, with
    # actors of ~1.5 patches on a strong texture, left a teacher that had
    # barely learned after 4,800 iterations: docs/results/v3_pilot/).
    bg = dict(color=rng.uniform(20, 110, size=3), freq=rng.uniform(0.1, 0.4, size=2),
              phase=rng.uniform(0, 6), amp=rng.uniform(0, 8))
    acts = []
    for _ in range(int(rng.integers(actors[0], actors[1] + 1))):
        radius = size * rng.uniform(0.16, 0.22)  # centre to corner, along x and y
        half = size * rng.uniform(0.12, 0.16)  # the shape's half size
        margin = radius + half + 1
        acts.append(dict(center=rng.uniform(margin, size - margin, size=2), radius=radius,
                         half=half, shape=int(rng.integers(0, 3)), texture=_texture(rng)))
    dis = []
    for _ in range(int(rng.integers(distractors[0], distractors[1] + 1))):
        half = size * rng.uniform(0.04, 0.07)
        angle = rng.uniform(0, 2 * np.pi, size=NUM_SLOTS)
        speed = rng.uniform(0, 0.05 * size, size=NUM_SLOTS)  # pixels per frame
        dis.append(dict(half=half, shape=int(rng.integers(0, 3)), texture=_texture(rng),
                        start=rng.uniform(half, size - half, size=(NUM_SLOTS, 2)),
                        velocity=np.stack([speed * np.cos(angle), speed * np.sin(angle)], 1)))
    depth = rng.permutation(len(acts) + len(dis))  # drawing order, back to front
    return dict(size=size, background=bg, actors=acts, distractors=dis, depth=depth)


def permute_slots(params: dict, perm: Sequence[int]) -> dict:
    """``params`` with the distractors' slot ``i`` taken from slot ``perm[i]``."""
    perm = np.asarray(perm)
    out = dict(params)
    out['distractors'] = [dict(d, start=d['start'][perm], velocity=d['velocity'][perm])
                          for d in params['distractors']]
    return out


def reverse_params(params: dict) -> dict:
    """``params`` of the clip played backwards: the distractors' slots in
    reverse order, each run backwards (same midpoint, opposite velocity)."""
    out = permute_slots(params, np.arange(NUM_SLOTS)[::-1])
    out['distractors'] = [dict(d, velocity=-d['velocity']) for d in out['distractors']]
    return out


def _shape_mask(xx, yy, cx, cy, half, shape):
    dx, dy = xx - cx, yy - cy
    if shape == 0:
        return np.maximum(abs(dx), abs(dy)) <= half
    if shape == 1:
        return dx ** 2 + dy ** 2 <= half ** 2
    return abs(dx) + abs(dy) <= 1.3 * half


def _paint(frame, xx, yy, cx, cy, obj):
    inside = _shape_mask(xx, yy, cx, cy, obj['half'], obj['shape'])
    t = obj['texture']
    u = (xx - cx) * np.cos(t['angle']) + (yy - cy) * np.sin(t['angle'])  # moves with the shape
    stripe = np.sin(2 * np.pi * t['freq'] * u + t['phase']) > 0
    frame[inside & stripe] = t['colors'][0]
    frame[inside & ~stripe] = t['colors'][1]


def render_order_clip(label: int, params: dict, num_frames: int = 24) -> np.ndarray:
    """(num_frames, size, size, 3) uint8 RGB frames of class ``label`` with
    the draws ``params`` (:func:`draw_params`). ``num_frames`` must be a
    multiple of 4 (four slots of equal length)."""
    if num_frames < NUM_SLOTS or num_frames % NUM_SLOTS:
        raise ValueError(f'num_frames={num_frames}: must be a positive multiple of '
                         f'{NUM_SLOTS} (four slots of equal length)')
    order = corner_order(label)
    size = params['size']
    dwell = num_frames // NUM_SLOTS
    mid = (dwell - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    bg = params['background']
    texture = bg['amp'] * np.sin(xx * bg['freq'][0] + bg['phase']) * np.cos(yy * bg['freq'][1])
    background = np.clip(bg['color'][None, None] + texture[..., None], 0, 255)
    objects = [('actor', a) for a in params['actors']] + \
        [('distractor', d) for d in params['distractors']]
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for t in range(num_frames):
        slot, k = divmod(t, dwell)
        frame = background.copy()
        for i in params['depth']:
            kind, obj = objects[i]
            if kind == 'actor':
                cx, cy = obj['center'] + obj['radius'] * CORNER_XY[order[slot]]
            else:
                cx, cy = obj['start'][slot] + obj['velocity'][slot] * (k - mid)
            _paint(frame, xx, yy, cx, cy, obj)
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


# -- a data set --------------------------------------------------------------
def make_order_dataset(root: str, num_train: int = 240, num_pool: int = 240,
                       num_val: int = 120, num_frames: int = 24, size: int = 64,
                       ext: str = 'webm', seed: int = 0, actors: Tuple[int, int] = (1, 2),
                       distractors: Tuple[int, int] = (1, 2)) -> Dict[str, object]:
    """Write ``train`` / ``pool`` / ``val`` clips and lists under ``root``.

    Labels cycle through the 8 classes (balanced splits; the pool's labels
    are written too, pre-training ignores them). Each split draws from its
    own stream of ``numpy.random.SeedSequence(seed)`` and lives in its own
    folder ``videos/<split>/``, so no clip is in two splits. Returns dict(root
    (the video folder the lists are relative to), train, pool, val (list
    files), classes (a JSON list of class names), num_classes).
    """
    for name, v in (('num_train', num_train), ('num_val', num_val)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f'{name} must be an int >= 1, got {v!r}')
    if not isinstance(num_pool, int) or num_pool < 0:
        raise ValueError(f'num_pool must be an int >= 0, got {num_pool!r}')
    if size < 24:
        raise ValueError(f'size={size}: clips need at least 24x24 pixels for four corners')
    for name, (lo, hi) in (('actors', actors), ('distractors', distractors)):
        if not 0 <= lo <= hi or (name == 'actors' and lo < 1):
            raise ValueError(f'{name}={(lo, hi)}: expected (min, max) counts with '
                             f'{"1" if name == "actors" else "0"} <= min <= max')
    render_order_clip(0, draw_params(np.random.default_rng(0), size, (1, 1), (0, 0)),
                      num_frames)  # checks num_frames before anything is written
    streams = np.random.SeedSequence(seed).spawn(3)
    out = {'root': osp.join(root, 'videos')}
    for (split, count), stream in zip((('train', num_train), ('pool', num_pool),
                                       ('val', num_val)), streams):
        rng = np.random.default_rng(stream)
        lines = []
        for i in range(count):
            label = i % NUM_CLASSES
            rel = f'{split}/{split}_{i:05d}.{ext}'
            params = draw_params(rng, size, actors, distractors)
            write_video(osp.join(out['root'], rel), render_order_clip(label, params, num_frames))
            lines.append(f'{rel} {label}')
        ann = osp.join(root, f'{split}.txt')
        os.makedirs(root, exist_ok=True)
        with open(ann, 'w') as f:
            f.write(''.join(line + '\n' for line in lines))
        out[split] = ann
    out['classes'] = osp.join(root, 'classes.json')
    with open(out['classes'], 'w') as f:
        json.dump(list(CLASSES), f)
    with open(osp.join(root, 'generator.json'), 'w') as f:
        json.dump(dict(generator='amd_mmaction.data.synthetic_order', num_train=num_train,
                       num_pool=num_pool, num_val=num_val, num_frames=num_frames, size=size,
                       ext=ext, seed=seed, actors=list(actors),
                       distractors=list(distractors)), f, indent=1)
    out['num_classes'] = NUM_CLASSES
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(
        prog='python -m amd_mmaction.data.synthetic_order',
        description='Write the order data set (8 classes, only temporal order decides the '
                    'label) as videos + mmaction2 lists.')
    ap.add_argument('out', help='output folder')
    ap.add_argument('--train', type=int, default=240)
    ap.add_argument('--pool', type=int, default=240)
    ap.add_argument('--val', type=int, default=120)
    ap.add_argument('--frames', type=int, default=24)
    ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--ext', default='webm')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    d = make_order_dataset(a.out, a.train, a.pool, a.val, a.frames, a.size, a.ext, a.seed)
    print(f"wrote {a.train} train + {a.pool} pool + {a.val} val clips under {d['root']}\n"
          'protocol: --set data.source=lists '
          f"data.train={d['train']} data.val={d['val']} data.pool={d['pool']} "
          f"data.root={d['root']} data.num_classes={d['num_classes']}")


if __name__ == '__main__':
    main()
