"""Whether mmaction2's standard FastRCNN route can be built here, and an
error saying what is missing when it cannot (raised by importing
:mod:`amd_mmaction.transfer.ava.require_mmdet`, which
``configs/ava/amd_vit-b_ava_fastrcnn.py`` lists in its custom_imports).

mmaction2 registers FastRCNN, AVARoIHead, BBoxHeadAVA, SingleRoIExtractor3D
and MaxIoUAssignerAVA only when mmdet imports, and they need mmcv's compiled
ops; without them the registry would only report "FastRCNN is not in the
mmaction::model registry". The error is a RuntimeError on purpose: mmengine
replaces an ImportError from custom_imports with a generic message.
"""
import importlib


class DetectionStackMissing(RuntimeError):
    pass


def missing_parts():
    missing = []
    try:
        importlib.import_module('mmdet')
    except ImportError as err:
        missing.append(f'mmdet>=3.0 ({err})')
    try:
        from mmcv.ops import RoIAlign  # noqa: F401
    except ImportError as err:
        missing.append(f'full mmcv 2.1.0 with compiled ops, not mmcv-lite ({err})')
    return missing


def check():
    missing = missing_parts()
    if missing:
        raise DetectionStackMissing(
            "configs/ava/amd_vit-b_ava_fastrcnn.py uses mmaction2's FastRCNN + "
            'AVARoIHead route, which needs ' + ' and '.join(missing) + '. '
            'Install them (docs/ava.md: mmcv builds from its sdist in ~30 min '
            'on 2 cores) or use configs/ava/amd_vit-b_ava_torch-roi.py, the '
            'same detector in plain torch that needs neither.')
    import mmaction.models  # noqa: F401  (registers the AVA parts with mmdet)
