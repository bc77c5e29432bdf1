"""The project's configs, shipped inside the package.

The checkout's ``configs/`` folder is installed as package data under
``amd_mmaction/.mim/configs`` (the OpenMMLab convention, so mmengine also
resolves ``amd_mmaction::tiny/amd_tiny_motion.py``). Library code that needs a
config at run time (the reproduction stages, the quick-start demo) asks
:func:`config_file` for it and never looks into a checkout.
"""
import os.path as osp

CONFIG_ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '.mim', 'configs')


def config_file(name: str) -> str:
    """Absolute path of the installed config ``name`` (relative to
    ``configs/``, e.g. ``'tiny/finetune_tiny_motion.py'``)."""
    path = osp.join(CONFIG_ROOT, name)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'config {name!r} is not installed with amd_mmaction (looked for {path}); '
            'reinstall the package (pip install .) or pass a config file path')
    return path
