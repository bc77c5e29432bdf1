# ImageNet-1K fine-tuning of an AMD image student, MAE's recipe, with
# mmaction2's Recognizer3D + VisionTransformer on one-frame clips. Start from
# the exported student (amd_mmaction.transfer.image.export_image_student, which keeps
# the student's 2-D position table):
#   load_from = 'work_dirs/<pretrain>/student_mmaction.pth'
_base_ = ['../_base_/amd_runtime.py']

img_size = 224
num_classes = 1000
data_root = 'data/imagenet'
mean = [123.675, 116.28, 103.53]
std = [58.395, 57.12, 57.375]
model = dict(
    type='Recognizer3D',
    backbone=dict(type='VisionTransformer', img_size=img_size, patch_size=16,
                  num_frames=1, tubelet_size=1, embed_dims=384, depth=12,
                  num_heads=6, mlp_ratio=4, qkv_bias=True,
                  norm_cfg=dict(type='LN', eps=1e-6), drop_path_rate=0.1,
                  use_mean_pooling=True),
    # MAE main_finetune.py: head weight trunc_normal(std=2e-5), bias 0.
    cls_head=dict(type='TimeSformerHead', num_classes=num_classes,
                  in_channels=384, init_std=2e-5, average_clips='prob',
                  label_smooth_eps=0.1),
    data_preprocessor=dict(
        type='ActionDataPreprocessor', mean=mean, std=std,
        format_shape='NCTHW',
        blending=dict(type='RandomBatchAugment', augments=[
            dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
            dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)])))

# MAE fine-tuning augmentation (timm's create_transform, main_finetune.py):
# bicubic random-resized crop, flip, RandAugment rand-m9-mstd0.5-inc1 (timm's
# default 2 ops), random erasing 0.25.
train_pipeline = [
    dict(type='ImageDecode'),
    dict(type='RandomResizedCrop', area_range=(0.08, 1.0)),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False,
         interpolation='bicubic'),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='VideoRandAugment', magnitude=9, num_layers=2, magnitude_std=0.5),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
# Evaluation: resize the short side to 256 (crop ratio 224/256), centre crop.
val_pipeline = [
    dict(type='ImageDecode'),
    dict(type='Resize', scale=(-1, img_size * 256 // 224),
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=128, num_workers=10, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='ImageListDataset', ann_file='',
                 data_prefix=dict(img=data_root + '/train'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128, num_workers=10, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageListDataset', ann_file='',
                 data_prefix=dict(img=data_root + '/val'),
                 pipeline=val_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

# MAE (FINETUNE.md ViT-B, main_finetune.py): AdamW (0.9, 0.999), wd 0.05,
# blr 5e-4 per 256 images at 1024 images per step (MAE: 32 GPUs x 32; here
# 8 GPUs x 128), layer-wise lr decay (0.75 for ViT-S, 0.65 for ViT-B), 5
# warm-up epochs, cosine to 1e-6 (not scaled), 100 epochs, drop path 0.1,
# mixup 0.8, cutmix 1.0, label smoothing 0.1, random erasing 0.25.
max_epochs = 100
warmup_epochs = 5
optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='bfloat16',
    constructor='LearningRateDecayOptimizerConstructor',
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    paramwise_cfg=dict(decay_rate=0.75, decay_type='layer_wise',
                       num_layers=12))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=1e-6, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3,
                                     save_best='acc/top1', rule='greater'))
auto_scale_lr = dict(enable=True, base_batch_size=256)
