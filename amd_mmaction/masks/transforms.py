"""The mask transform: one student/teacher mask pair per view."""
from typing import Dict, Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmaction.registry import TRANSFORMS
from amd_mmaction.masks.tube import check_mask_config, sample_tube_masks


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

    def get_rng_state(self):
        """The state of the mask's own generator (``seed`` given), else None:
        unseeded masks draw from numpy's global state. Saved in checkpoints
        for exact resume (``amd_mmaction.engine.rng_state``)."""
        return None if self.rng is None else self.rng.bit_generator.state

    def set_rng_state(self, state) -> None:
        if (state is None) != (self.rng is None):
            raise ValueError(
                f'AsymmetricTubeMask: the saved mask generator state is '
                f'{"absent" if state is None else "present"}, but this mask is '
                f'{"seeded" if self.rng is not None else "unseeded"}: the mask '
                'seed in the config changed since the checkpoint was written')
        if state is not None:
            self.rng.bit_generator.state = state

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
