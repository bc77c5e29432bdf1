# Tiny CPU fine-tuning of the tiny image student (amd_tiny_image.py) on the
# shape images: Recognizer3D + VisionTransformer (1 frame, 32x32, patch 8,
# 96/4/3) with layer-wise lr decay, validated every epoch. load_from: the
# student exported by amd_mmaction.transfer.image.export_image_student.
_base_ = ['../image/_image_finetune_base.py']

data_root = 'data/shapes'
img_size = 32
num_classes = 4
model = dict(
    backbone=dict(img_size=img_size, patch_size=8, embed_dims=96, depth=4,
                  num_heads=3, drop_path_rate=0.1),
    # pinned: the tiny demo keeps its head init (the published one is 2e-5)
    cls_head=dict(num_classes=num_classes, in_channels=96, init_std=0.02),
    data_preprocessor=dict(blending=dict(augments=[
        dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
        dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)])))
train_pipeline = [
    dict(type='ImageDecode'),
    dict(type='RandomResizedCrop', area_range=(0.3, 1.0)),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False,
         interpolation='bicubic'),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='ImageDecode'),
    dict(type='Resize', scale=(-1, img_size * 256 // 224),
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file=data_root + '/train.txt',
                 data_prefix=dict(img=data_root + '/images'),
                 pipeline=train_pipeline))
# Validation reads the class folders (ImageNet's val/ layout).
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file='', data_prefix=dict(img=data_root + '/images/val'),
                 pipeline=val_pipeline))
test_dataloader = val_dataloader

max_epochs = 3
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    constructor='LearningRateDecayOptimizerConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999),
                   weight_decay=0.05),
    paramwise_cfg=dict(decay_rate=0.75, decay_type='layer_wise',
                       num_layers=4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-5,
         by_epoch=True, begin=1, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(logger=dict(interval=5),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1,
                                     save_best=None))
auto_scale_lr = dict(enable=False)
load_from = None
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
