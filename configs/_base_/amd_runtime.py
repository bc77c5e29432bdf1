# Runtime shared by every amd-mmaction config: mmaction2's defaults plus the
# plugin import.
_base_ = ['mmaction::_base_/default_runtime.py']

custom_imports = dict(imports=['amd_mmaction'], allow_failed_imports=False)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                    save_best=None),
    logger=dict(type='LoggerHook', interval=10))
# bad_clips (all DataLoader workers) in every training log line
custom_hooks = [dict(type='BadClipLogHook')]
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)
visualizer = dict(type='ActionVisualizer',
                  vis_backends=[dict(type='LocalVisBackend')])
