# Tiny CPU ImageMAE setting on the synthetic shape images
# (amd_mmaction.transfer.image.make_shape_dataset): 32x32 crops, patch 8 -> (1, 4, 4)
# = 16 tokens; student 75% (12 hidden), teacher 50% (8 hidden): V=4, D=4.
# Student 96/4/3, MAE-format teacher 128/6/4 with class token, taps
# (2, 4) <-> (3, 6). Set model.teacher.checkpoint to an MAE-format file.
_base_ = ['../image/_image_pretrain_base.py']

data_root = 'data/shapes'
img_size = 32
grid = (1, img_size // 8, img_size // 8)
mask = dict(type='AsymmetricTubeMask', mode='asymmetric', student_ratio=0.75,
            teacher_ratio=0.5, grid=grid)
train_pipeline = [
    dict(type='ImageDecode'),
    dict(type='RandomResizedCrop', area_range=(0.2, 1.0)),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False,
         interpolation='bicubic'),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    mask,
    dict(type='PackActionInputs', algorithm_keys=('mask_stu', 'mask_tea')),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file=data_root + '/train.txt',
                 data_prefix=dict(img=data_root + '/images'),
                 pipeline=train_pipeline))

tiny_vit = dict(type='VideoViT', img_size=img_size, patch_size=8,
                num_frames=1, tubelet_size=1, pos_embed='sincos2d',
                qkv_bias='qkv')
model = dict(
    student=dict(tiny_vit, embed_dims=96, depth=4, num_heads=3),
    decoder=dict(embed_dims=64, depth=1, num_heads=2),
    teacher=dict(taps=(3, 6), checkpoint=None,
                 encoder=dict(tiny_vit, embed_dims=128, depth=6, num_heads=4,
                              with_cls_token=True)),
    # generator_heads=4 (the teacher's head count, the default before it became
    # teacher width // 64 = 2): keeps the demo and reproduction protocol v1 bit-identical.
    alignment=dict(student_taps=(2, 4), teacher_taps=(3, 6), generator_heads=4))

max_epochs = 4
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.95),
                   weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       flat_decay_mult=0.0,
                       custom_keys={'mask_token': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-5,
         by_epoch=True, begin=1, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs + 1)
default_hooks = dict(logger=dict(interval=5),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
auto_scale_lr = dict(enable=False)
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
