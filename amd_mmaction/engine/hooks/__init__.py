"""Every hook the project registers, one file each."""
from amd_mmaction.engine.hooks.bad_clips import BadClipLogHook
from amd_mmaction.engine.hooks.checkpoint import (CheckpointSaveError, SafeCheckpointHook,
                                                  install_resolver)
from amd_mmaction.engine.hooks.data_check import DataListCheckHook
from amd_mmaction.engine.hooks.freeze import FreezeModulesHook
from amd_mmaction.engine.hooks.teacher_identity import TeacherIdentityHook

__all__ = ['BadClipLogHook', 'CheckpointSaveError', 'DataListCheckHook',
           'FreezeModulesHook', 'SafeCheckpointHook', 'TeacherIdentityHook', 'install_resolver']
