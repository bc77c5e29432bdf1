"""Repeated augmentation: several crops and masks per decoded clip."""
import copy
from typing import Dict, List, Sequence

import numpy as np
from mmcv.transforms import BaseTransform, Compose

from mmaction.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RepeatedAugment(BaseTransform):
    """Runs ``transforms`` ``num_views`` times on one decoded clip and stacks
    the views (the authors' repeated augmentation: one decode, several
    independent crops and masks).

    ``imgs`` (each view already ``(1, C, T, H, W)`` after FormatShape) are
    concatenated on axis 0; per-view arrays named in ``stack_keys`` are
    stacked on a new axis 0.
    """

    def __init__(self, transforms: List[dict], num_views: int = 4,
                 stack_keys: Sequence[str] = ('mask_stu', 'mask_tea')):
        if int(num_views) < 1:
            raise ValueError(f'num_views must be >= 1, got {num_views}')
        self.num_views = int(num_views)
        # Build with mmaction's registry so the views work outside a Runner too.
        self.pipeline = Compose([TRANSFORMS.build(t) if isinstance(t, dict) else t
                                 for t in transforms])
        self.stack_keys = tuple(stack_keys)

    def _view_input(self, results: Dict) -> Dict:
        view = copy.copy(results)
        # Some transforms (Flip) work in place: give each view its frames.
        imgs = results['imgs']
        view['imgs'] = ([im.copy() for im in imgs]
                        if isinstance(imgs, list) else imgs.copy())
        return view

    def _merge(self, views: List[Dict]) -> Dict:
        merged = views[0]
        merged['imgs'] = np.concatenate([v['imgs'] for v in views], axis=0)
        return merged

    def transform(self, results: Dict) -> Dict:
        views = []
        for _ in range(self.num_views):
            out = self.pipeline(self._view_input(results))
            if out is None:
                return None
            views.append(out)
        merged = self._merge(views)
        for key in self.stack_keys:
            if key in merged:
                merged[key] = np.stack([v[key] for v in views], axis=0)
        merged['num_views'] = self.num_views
        return merged

    def __repr__(self):
        return (f'{self.__class__.__name__}(num_views={self.num_views}, '
                f'pipeline={self.pipeline})')
