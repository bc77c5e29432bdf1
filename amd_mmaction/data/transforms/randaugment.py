"""RandAugment for clips, as the VideoMAE/AMD fine-tuning recipe uses it
(``rand-m7-n4-mstd0.5-inc1``): ``num_layers`` operations drawn with
replacement, each applied with probability 0.5 at a magnitude drawn from
N(magnitude, magnitude_std) clipped to [0, 10]; one draw per clip, applied
to every frame alike so motion stays intact. mmaction2 1.2.0 only offers it
through pytorchvideo/torchvision, which do not import here.
"""
import numpy as np
from mmcv import image as mmimage
from mmcv.transforms import BaseTransform

from mmaction.registry import TRANSFORMS

FILL = (124, 116, 104)  # ImageNet mean, the fill of geometric ops


def _signed(value, rng):
    return value if rng.random() < 0.5 else -value


def _solarize_add(img, add):
    out = img.astype(np.int16)
    out = np.where(img < 128, np.clip(out + add, 0, 255), out)
    return out.astype(np.uint8)


# name -> (function of (frame, level in [0, 1], rng-drawn sign) , uses a sign)
OPS = {
    'AutoContrast': (lambda f, m, s: mmimage.auto_contrast(f), False),
    'Equalize': (lambda f, m, s: mmimage.imequalize(f), False),
    'Invert': (lambda f, m, s: mmimage.iminvert(f), False),
    'Rotate': (lambda f, m, s: mmimage.imrotate(f, s * 30 * m, border_value=FILL), True),
    'PosterizeIncreasing': (lambda f, m, s: mmimage.posterize(f, 4 - int(4 * m)), False),
    'SolarizeIncreasing': (lambda f, m, s: mmimage.solarize(f, 256 - 256 * m), False),
    'SolarizeAdd': (lambda f, m, s: _solarize_add(f, int(110 * m)), False),
    'ColorIncreasing': (lambda f, m, s: mmimage.adjust_color(f, 1 + s * 0.9 * m), True),
    'ContrastIncreasing': (lambda f, m, s: mmimage.adjust_contrast(f, 1 + s * 0.9 * m), True),
    'BrightnessIncreasing': (lambda f, m, s: mmimage.adjust_brightness(f, 1 + s * 0.9 * m), True),
    'SharpnessIncreasing': (lambda f, m, s: mmimage.adjust_sharpness(f, 1 + s * 0.9 * m), True),
    'ShearX': (lambda f, m, s: mmimage.imshear(f, s * 0.3 * m, 'horizontal', FILL), True),
    'ShearY': (lambda f, m, s: mmimage.imshear(f, s * 0.3 * m, 'vertical', FILL), True),
    'TranslateXRel': (lambda f, m, s: mmimage.imtranslate(
        f, s * 0.45 * m * f.shape[1], 'horizontal', FILL), True),
    'TranslateYRel': (lambda f, m, s: mmimage.imtranslate(
        f, s * 0.45 * m * f.shape[0], 'vertical', FILL), True),
}


@TRANSFORMS.register_module()
class VideoRandAugment(BaseTransform):
    """RandAugment on ``results['imgs']`` (a list of HxWx3 uint8 frames).

    Args:
        magnitude: mean magnitude on timm's 0..10 scale (7 in the recipe).
        num_layers: operations per clip (4).
        magnitude_std: std of the per-operation magnitude (0.5).
        prob: probability of applying each drawn operation (0.5).
        ops: names from :data:`OPS` (all 15 of timm's 'inc1' set by default).
    """

    def __init__(self, magnitude=7, num_layers=4, magnitude_std=0.5, prob=0.5,
                 ops=tuple(OPS)):
        unknown = sorted(set(ops) - set(OPS))
        if unknown:
            raise ValueError(f'unknown RandAugment ops {unknown}; choose from {sorted(OPS)}')
        if not 0 <= magnitude <= 10:
            raise ValueError(f'magnitude must be in [0, 10], got {magnitude}')
        self.magnitude = magnitude
        self.num_layers = num_layers
        self.magnitude_std = magnitude_std
        self.prob = prob
        self.ops = tuple(ops)

    def transform(self, results):
        rng = np.random
        frames = results['imgs']
        for name in rng.choice(self.ops, self.num_layers, replace=True):
            if rng.random() > self.prob:
                continue
            m = self.magnitude
            if self.magnitude_std > 0:
                m = rng.normal(m, self.magnitude_std)
            level = float(np.clip(m, 0, 10)) / 10
            fn, signed = OPS[name]
            sign = _signed(1.0, rng) if signed else 1.0
            frames = [fn(f, level, sign) for f in frames]
        results['imgs'] = [np.ascontiguousarray(f, dtype=np.uint8) for f in frames]
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(magnitude={self.magnitude}, '
                f'num_layers={self.num_layers}, magnitude_std={self.magnitude_std})')
