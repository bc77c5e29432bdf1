"""amd-mmaction: Asymmetric Masked Distillation for mmaction2.

Importing this package patches the pinned OpenMMLab stack where it is
broken (see :mod:`amd_mmaction.compat`) and registers every module.
"""
from . import compat

compat.apply()

import mmaction.models  # noqa: E402,F401  (registers mmaction2's modules)

from . import alignment, data, losses, masks, pretrain, runner, student, teacher, transfer  # noqa: E402,F401
from . import image  # noqa: E402,F401  (the ImageMAE setting)
from .transfer import ava  # noqa: E402,F401  (AVA detection, docs/ava.md)

__version__ = '0.1.0'
