"""From the official data set downloads to checked mmaction2 lists.

One builder per data set, each reading the annotation files as published
(SSV2 json, Kinetics csv, UCF101 / HMDB51 split files, AVA csv / pbtxt),
and a scan that opens and decodes every listed clip with the backend a
config uses. Command line: ``python tools/data/prepare.py -h``; guide:
``docs/data.md``.

This package imports nothing heavy at import time (no torch, mmengine or
decoders): the builders need only the standard library, the scan PyAV and
decord (DALI and mmengine when asked for).
"""
from amd_mmaction.data.prepare.common import PrepareError
from amd_mmaction.data.prepare.ava import prepare_ava
from amd_mmaction.data.prepare.kinetics import prepare_kinetics
from amd_mmaction.data.prepare.scan import scan_list, settings_from_config, span_frames
from amd_mmaction.data.prepare.ssv2 import prepare_ssv2
from amd_mmaction.data.prepare.ucf_hmdb import prepare_hmdb51, prepare_ucf101

__all__ = ['PrepareError', 'prepare_ava', 'prepare_hmdb51', 'prepare_kinetics', 'prepare_ssv2',
           'prepare_ucf101', 'scan_list', 'settings_from_config', 'span_frames']
