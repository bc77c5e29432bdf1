"""Importing this module checks for mmdet + full mmcv and raises
:class:`~amd_mmaction.transfer.ava.mmdet_route.DetectionStackMissing`
naming what is missing (used as a config custom_import)."""
from amd_mmaction.transfer.ava.mmdet_route import check

check()
