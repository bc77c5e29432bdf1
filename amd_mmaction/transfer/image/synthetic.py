"""A small labeled image set written as real PNG files.

Each image shows one textured shape on a textured background; the label is
the shape, so a single frame decides the class. Class names sort in label
order, so the list files and the class folders agree (as ImageNet's do).
Files are written with OpenCV and read back through mmaction2's
``ImageDecode`` like any folder of JPEG/PNG files.
"""
import os
import os.path as osp
from typing import Dict

import cv2
import numpy as np

SHAPES = ('diamond', 'disc', 'square', 'triangle')


def render_shape(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) uint8 RGB image of shape ``SHAPES[label]``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    freq = rng.uniform(0.1, 0.4, size=2)
    texture = 25 * np.sin(xx * freq[0] + rng.uniform(0, 6)) * np.cos(yy * freq[1])
    img = np.clip(rng.uniform(20, 110, size=3)[None, None] + texture[..., None], 0, 255)
    r = size * rng.uniform(0.18, 0.3)
    cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
    dx, dy = xx - cx, yy - cy
    inside = {
        'diamond': abs(dx) + abs(dy) <= 1.3 * r,
        'disc': dx ** 2 + dy ** 2 <= r ** 2,
        'square': np.maximum(abs(dx), abs(dy)) <= r,
        'triangle': (dy <= r) & (2 * abs(dx) <= dy + r),  # apex up
    }[SHAPES[label]]
    img[inside] = rng.uniform(150, 255, size=3)
    return img.astype(np.uint8)


def make_shape_dataset(root: str, num_train: int = 40, num_val: int = 16,
                       size: int = 64, seed: int = 0) -> Dict[str, str]:
    """Write ``train``/``val`` PNGs under ``root/images/<split>/<class>/``
    (ImageNet's folder layout) and list files ``root/<split>.txt`` with lines
    ``<split>/<class>/<name>.png <label>``.

    Returns {'root': image folder, 'train', 'val': list files,
    'train_dir', 'val_dir': class folders}.
    """
    rng = np.random.default_rng(seed)
    images = osp.join(root, 'images')
    out = {'root': images}
    for split, count in (('train', num_train), ('val', num_val)):
        lines = []
        for i in range(count):
            label = i % len(SHAPES)
            rel = f'{split}/{SHAPES[label]}/{split}_{i:05d}.png'
            path = osp.join(images, rel)
            os.makedirs(osp.dirname(path), exist_ok=True)
            rgb = render_shape(label, size, rng)
            if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
                raise OSError(f'could not write {path}')
            lines.append(f'{rel} {label}')
        out[split] = osp.join(root, f'{split}.txt')
        with open(out[split], 'w') as f:
            f.write('\n'.join(lines) + '\n')
        out[f'{split}_dir'] = osp.join(images, split)
    return out
