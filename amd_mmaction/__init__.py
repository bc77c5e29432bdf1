"""amd-mmaction: Asymmetric Masked Distillation for mmaction2.

Importing this package patches the pinned OpenMMLab stack where it is
broken (see :mod:`amd_mmaction.compat`) and registers every module.
"""
from amd_mmaction import compat

compat.apply()

import mmaction.models  # noqa: E402,F401  (registers mmaction2's modules)

# The story, in import order: masks -> student -> teacher -> alignment ->
# losses -> heads -> pre-trainer; then data, engine, evaluation, transfer
# (recognition, AVA, image) and weights (every checkpoint format).
from amd_mmaction import (masks, student, teacher, alignment, losses, heads, pretrain,  # noqa: E402,F401
                          data, engine, evaluation, transfer, weights)

__version__ = '0.1.0'
