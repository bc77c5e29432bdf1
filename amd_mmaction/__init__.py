"""amd-mmaction: Asymmetric Masked Distillation for mmaction2.

Importing this package patches the pinned OpenMMLab stack where it is
broken (see :mod:`amd_mmaction.compat`) and registers every module.
"""
from . import compat

compat.apply()

import mmaction.models  # noqa: E402,F401  (registers mmaction2's modules)

from . import alignment, losses, masks, pretrain, runner, student, teacher  # noqa: E402,F401

__version__ = '0.1.0'
