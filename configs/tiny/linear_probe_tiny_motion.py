# Tiny linear probe on the motion videos: the fine-tuning model of
# finetune_tiny_motion.py with the backbone frozen (lr and decay multipliers
# 0, no drop path); fc_norm and the linear head learn. No mixup/cutmix,
# label smoothing or erasing.
_base_ = ['./finetune_tiny_motion.py']
max_epochs = 12
warmup_epochs = 1
model = dict(backbone=dict(drop_path_rate=0.0),
             cls_head=dict(label_smooth_eps=0.0),
             data_preprocessor=dict(blending=None))
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='UniformSample', clip_len=8, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='RandomResizedCrop', area_range=(0.5, 1.0)),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-2, betas=(0.9, 0.999), weight_decay=0.0),
    paramwise_cfg=dict(custom_keys={
        'backbone': dict(lr_mult=0.0, decay_mult=0.0),
        'backbone.fc_norm': dict(lr_mult=1.0, decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min_ratio=1e-2, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
