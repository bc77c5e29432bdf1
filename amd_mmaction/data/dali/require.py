"""A clear error when NVIDIA DALI is not installed.

DALI is an optional extra (``pip install -e ".[dali]"``): without it the
first DALI import fails deep in a batch with ``No module named 'nvidia'``,
which says nothing about what to install. Everything that builds a DALI
data set or pipeline calls :func:`require_dali` first.
"""
import importlib

INSTALL_HINT = ('pip install nvidia-dali-cuda120==2.4.0  (the version this project pins; '
                'or, from an amd-mmaction checkout: pip install -e ".[dali]")')
MISSING_REASON = f'NVIDIA DALI (nvidia.dali) is not installed; {INSTALL_HINT}'


class DALIMissing(ModuleNotFoundError):
    """NVIDIA DALI is needed but not importable (a ModuleNotFoundError, so
    ``except ImportError`` callers keep working)."""


def require_dali(what: str) -> None:
    """Import ``nvidia.dali`` or raise :class:`DALIMissing` naming ``what``
    needed it, the import error and the install line."""
    try:
        importlib.import_module('nvidia.dali')
    except ImportError as err:
        raise DALIMissing(
            f'{what} needs NVIDIA DALI, which cannot be imported here ({err}). '
            f'Install it: {INSTALL_HINT}; or use the decord data path '
            "(VideoDataset / RobustVideoDataset, e.g. configs/tiny/amd_tiny_motion.py).",
            name='nvidia.dali') from err
