"""Mask sampling (method.md §1): one spatial pattern repeated over time.

A mask is a boolean vector over the ``T' x H' x W'`` token grid in raster
order, True where the token is hidden.  ``student`` and ``teacher`` masks
come from one permutation of the spatial cells, so the student's visible set
is a subset of the teacher's; the cells hidden from the student only
(``student & ~teacher``) are the "diff" tokens D.
"""
from typing import Optional, Sequence, Tuple

import numpy as np

MODES = ('asymmetric', 'tube', 'symmetric')


def num_masked(ratio: float, cells: int) -> int:
    # int() truncation is the authors' rule: 0.9 * 196 -> 176, 0.75 -> 147.
    return int(ratio * cells)


def check_mask_config(grid: Sequence[int], mode: str, student_ratio: float,
                      teacher_ratio: Optional[float]) -> Tuple[int, int, int]:
    """Validate a mask setting; return (spatial cells, n_student, n_teacher).

    Raises ``ValueError`` naming the offending value.
    """
    if mode not in MODES:
        raise ValueError(f'mask mode {mode!r} is not one of {MODES}')
    if len(grid) != 3 or any(int(g) <= 0 for g in grid):
        raise ValueError(f'mask grid must be 3 positive ints (T\', H\', W\'), '
                         f'got {tuple(grid)}')
    cells = int(grid[1]) * int(grid[2])
    if not 0.0 <= student_ratio < 1.0:
        raise ValueError(
            f'student_ratio={student_ratio} must lie in [0, 1)')
    n_stu = num_masked(student_ratio, cells)
    if n_stu == 0:
        raise ValueError(
            f'student_ratio={student_ratio} masks no cell of the '
            f'{grid[1]}x{grid[2]} grid: nothing to reconstruct')
    if mode == 'asymmetric':
        if teacher_ratio is None:
            raise ValueError('asymmetric masking needs teacher_ratio')
        if not 0.0 <= teacher_ratio < 1.0:
            raise ValueError(
                f'teacher_ratio={teacher_ratio} must lie in [0, 1)')
        if teacher_ratio >= student_ratio:
            raise ValueError(
                f'teacher_ratio={teacher_ratio} must be < student_ratio='
                f'{student_ratio}: the teacher must see more than the student')
        n_tea = num_masked(teacher_ratio, cells)
        if n_tea >= n_stu:
            raise ValueError(
                f'ratios {student_ratio}/{teacher_ratio} give the same count '
                f'({n_stu}) of masked cells on a {cells}-cell grid: no '
                'teacher-only tokens; use a finer grid or wider gap')
    else:
        if teacher_ratio is not None and teacher_ratio != student_ratio \
                and mode == 'symmetric':
            raise ValueError(
                f'symmetric masking uses one ratio; got teacher_ratio='
                f'{teacher_ratio} != student_ratio={student_ratio}')
        n_tea = n_stu
    return cells, n_stu, n_tea


def sample_tube_masks(grid: Sequence[int], n_student: int, n_teacher: int,
                      rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one (student, teacher) mask pair, each a bool array of
    ``prod(grid)`` entries."""
    t, h, w = (int(g) for g in grid)
    perm = rng.permutation(h * w)
    stu = np.zeros(h * w, dtype=bool)
    tea = np.zeros(h * w, dtype=bool)
    stu[perm[:n_student]] = True
    tea[perm[:n_teacher]] = True
    return np.tile(stu, t), np.tile(tea, t)
