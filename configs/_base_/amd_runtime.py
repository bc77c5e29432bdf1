# Runtime shared by every amd-mmaction config: mmaction2's defaults plus the
# plugin import.
_base_ = ['mmaction::_base_/default_runtime.py']

custom_imports = dict(imports=['amd_mmaction'], allow_failed_imports=False)
# SafeCheckpointHook: saves, then updates last_checkpoint, then deletes old
# ones, so a kill or a full disk mid-save never leaves the run without a
# complete checkpoint (docs/reliability.md, "Saving and resuming").
# TeacherIdentityHook: every checkpoint records the teacher file (fingerprint of
# its weights) and the model shape; --resume with another teacher is refused
# unless --cfg-options allow_teacher_change=True (a default hook: configs that
# set their own custom_hooks keep it).
default_hooks = dict(
    checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3,
                    save_best=None),
    logger=dict(type='LoggerHook', interval=10),
    teacher_identity=dict(type='TeacherIdentityHook'))
# bad_clips (all DataLoader workers) in every training log line
# DataListCheckHook: labels vs model.cls_head.num_classes before the run
custom_hooks = [dict(type='BadClipLogHook'), dict(type='DataListCheckHook')]
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)
visualizer = dict(type='ActionVisualizer',
                  vis_backends=[dict(type='LocalVisBackend')])
