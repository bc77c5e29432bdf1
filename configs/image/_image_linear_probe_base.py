# Linear probe of an AMD image student on ImageNet-1K: frozen backbone
# (FreezeModulesHook), mean-pooled tokens through the backbone's fresh,
# frozen fc_norm (a parameter-free LayerNorm: the feature normalisation MAE
# gets from its BatchNorm without affine), one linear layer. MAE's recipe
# (90 epochs, 10 warm-up, blr 0.1, no weight decay, crop + flip) with SGD
# momentum 0.9 in place of LARS (not in mmengine).
_base_ = ['./_image_finetune_base.py']
model = dict(
    backbone=dict(drop_path_rate=0.0),
    # keeps TimeSformerHead's default init (std 0.02; MAE's probe: 0.01)
    cls_head=dict(label_smooth_eps=0.0, dropout_ratio=0.0, init_std=0.02),
    data_preprocessor=dict(blending=None))
train_pipeline = [
    dict(type='ImageDecode'),
    dict(type='RandomResizedCrop', area_range=(0.08, 1.0)),
    dict(type='Resize', scale=(224, 224), keep_ratio=False,
         interpolation='bicubic'),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(batch_size=512, dataset=dict(pipeline=train_pipeline))
# keeps the base's data checks (a list replaces, it does not merge)
custom_hooks = [dict(type='BadClipLogHook'), dict(type='DataListCheckHook'),
                dict(type='FreezeModulesHook', modules=('backbone',))]
max_epochs = 90
warmup_epochs = 10
optim_wrapper = dict(
    _delete_=True, type='AmpOptimWrapper', dtype='bfloat16',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=0.0, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
