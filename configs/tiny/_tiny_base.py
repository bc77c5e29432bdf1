# Tiny CPU setting on the synthetic motion videos (tools/make_demo_data.py):
# 8 frames at 64x64, patch 8, tubelet 2 -> 4x8x8 = 256 tokens.
_base_ = ['../_base_/amd_runtime.py', '../_base_/models/amd_vit-s_vit-b.py']

data_root = 'data/motion'
num_frames = 8
img_size = 64
num_views = 2
grid = (num_frames // 2, img_size // 8, img_size // 8)
mask = dict(type='AsymmetricTubeMask', mode='asymmetric', student_ratio=0.9,
            teacher_ratio=0.75, grid=grid)
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=num_frames, frame_interval=2,
         num_clips=1),
    dict(type='DecordDecode'),
    dict(type='RepeatedAugment', num_views=num_views, transforms=[
        dict(type='MultiScaleCrop', input_size=img_size,
             scales=(1, 0.875, 0.75, 0.66), random_crop=False,
             max_wh_scale_gap=1),
        dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
        dict(type='FormatShape', input_format='NCTHW'),
        mask,
    ]),
    dict(type='PackActionInputs', algorithm_keys=('mask_stu', 'mask_tea')),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='RobustVideoDataset', on_bad_clip='pad', ann_file=data_root + '/train.txt',
                 data_prefix=dict(video=data_root + '/videos'),
                 pipeline=train_pipeline))

tiny_vit = dict(type='VideoViT', img_size=img_size, patch_size=8,
                num_frames=num_frames, tubelet_size=2)
model = dict(
    student=dict(tiny_vit, embed_dims=96, depth=4, num_heads=3),
    decoder=dict(embed_dims=64, depth=1, num_heads=2),
    teacher=dict(taps=(3, 6), checkpoint=None,
                 encoder=dict(tiny_vit, embed_dims=128, depth=6, num_heads=4)),
    # generator_heads=4 (the teacher's head count, the default before it became
    # teacher width // 64 = 2): keeps the demo and reproduction protocol v1 bit-identical.
    alignment=dict(student_taps=(2, 4), teacher_taps=(3, 6), generator_heads=4))

max_epochs = 6
optim_wrapper = dict(
    type='OptimWrapper',
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
# resumes exactly from mid-epoch checkpoints too (docs/reliability.md)
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs + 1)
val_cfg = None
test_cfg = None
default_hooks = dict(logger=dict(interval=5),
                     checkpoint=dict(type='SafeCheckpointHook', interval=max_epochs,
                                     max_keep_ckpts=1))
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
