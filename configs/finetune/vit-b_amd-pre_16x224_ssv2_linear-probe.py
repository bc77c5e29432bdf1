# Linear probe of a ViT-B AMD student on Something-Something V2 (our
# recipe; the paper reports none): the backbone is frozen (lr and weight
# decay multipliers 0, drop path 0), only fc_norm (mean-pooled tokens) and
# the linear head learn; no mixup/cutmix, label smoothing or erasing.
# Start from a pre-training checkpoint with
#   --cfg-options model.backbone.init_cfg.checkpoint=PRETRAIN.pth
_base_ = ['./_base_/vit_recognizer.py', './_base_/ssv2_finetune_data.py']
num_classes = 174
max_epochs = 50
warmup_epochs = 5
model = dict(
    backbone=dict(drop_path_rate=0.0),
    # our probe keeps TimeSformerHead's default head init (std 0.02)
    cls_head=dict(num_classes=num_classes, label_smooth_eps=0.0,
                  init_std=0.02),
    data_preprocessor=dict(blending=None))
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='UniformSample', clip_len=16, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop', area_range=(0.3, 1.0)),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(batch_size=32, dataset=dict(pipeline=train_pipeline))
# The frozen backbone still runs backward (mmengine-native freezing that is
# safe under DDP); its parameters never move: lr 0 and AdamW's decoupled
# decay lr * wd = 0.
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0),
    paramwise_cfg=dict(custom_keys={
        'backbone': dict(lr_mult=0.0, decay_mult=0.0),
        'backbone.fc_norm': dict(lr_mult=1.0, decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min_ratio=1e-3, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
