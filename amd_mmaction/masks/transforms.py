"""Pipeline transforms: masks per view, and repeated augmentation."""
import copy
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform, Compose

from mmaction.registry import TRANSFORMS
from .tube import check_mask_config, sample_tube_masks


@TRANSFORMS.register_module()
class AsymmetricTubeMask(BaseTransform):
    """Adds ``mask_stu`` / ``mask_tea`` (bool, ``prod(grid)``) to results.

    Args:
        grid: token grid (T', H', W') = (frames / tubelet, H / patch, W / patch).
        student_ratio: fraction of spatial cells hidden from the student.
        teacher_ratio: fraction hidden from the teacher (``asymmetric`` only).
        mode: ``asymmetric`` (AMD), ``tube`` (VideoMAE: teacher mask =
            student mask, no teacher needed) or ``symmetric`` (DMAE: the
            teacher sees exactly what the student sees).
        seed: optional seed; by default masks follow numpy's global state,
            which mmengine seeds per worker.
    """

    def __init__(self, grid: Sequence[int], student_ratio: float = 0.9,
                 teacher_ratio: Optional[float] = 0.75,
                 mode: str = 'asymmetric', seed: Optional[int] = None):
        if mode != 'asymmetric':
            teacher_ratio = None if mode == 'tube' else teacher_ratio
        self.grid = tuple(int(g) for g in grid)
        self.mode = mode
        self.student_ratio = student_ratio
        self.teacher_ratio = teacher_ratio
        _, self.n_student, self.n_teacher = check_mask_config(
            self.grid, mode, student_ratio, teacher_ratio)
        self.rng = (np.random.default_rng(seed) if seed is not None else None)

    def _rng(self):
        if self.rng is not None:
            return self.rng
        return np.random.default_rng(np.random.randint(0, 2**31 - 1))

    def transform(self, results: Dict) -> Dict:
        stu, tea = sample_tube_masks(self.grid, self.n_student,
                                     self.n_teacher, self._rng())
        results['mask_stu'] = stu
        results['mask_tea'] = tea
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(grid={self.grid}, mode='
                f'{self.mode}, student_ratio={self.student_ratio}, '
                f'teacher_ratio={self.teacher_ratio})')


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
