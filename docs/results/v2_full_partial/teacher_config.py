custom_hooks = [
    dict(type='BadClipLogHook'),
    dict(type='DataListCheckHook'),
]
custom_imports = dict(
    allow_failed_imports=False, imports=[
        'amd_mmaction',
    ])
data_root = 'data/motion'
default_hooks = dict(
    checkpoint=dict(
        _scope_='mmaction',
        interval=5,
        max_keep_ckpts=1,
        save_best=None,
        type='SafeCheckpointHook'),
    logger=dict(
        _scope_='mmaction', ignore_last=False, interval=5, type='LoggerHook'),
    param_scheduler=dict(_scope_='mmaction', type='ParamSchedulerHook'),
    runtime_info=dict(_scope_='mmaction', type='RuntimeInfoHook'),
    sampler_seed=dict(_scope_='mmaction', type='DistSamplerSeedHook'),
    sync_buffers=dict(_scope_='mmaction', type='SyncBuffersHook'),
    timer=dict(_scope_='mmaction', type='IterTimerHook'))
default_scope = 'mmaction'
env_cfg = dict(
    cudnn_benchmark=False,
    dist_cfg=dict(backend='gloo'),
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
experiment_name = 'runs_v2_full_teacher_170616_157028'
grid = (
    4,
    8,
    8,
)
img_size = 64
load_from = None
log_level = 'WARNING'
log_processor = dict(
    _scope_='mmaction', by_epoch=True, type='LogProcessor', window_size=10)
mask = dict(
    grid=(
        4,
        8,
        8,
    ),
    mode='asymmetric',
    student_ratio=0.9,
    teacher_ratio=0.75,
    type='AsymmetricTubeMask')
max_epochs = 8
model = dict(
    alignment=None,
    data_preprocessor=dict(
        format_shape='NCTHW',
        mean=[
            123.675,
            116.28,
            103.53,
        ],
        std=[
            58.395,
            57.12,
            57.375,
        ],
        type='ActionDataPreprocessor'),
    decoder=dict(depth=1, embed_dims=64, num_heads=2, type='PixelDecoder'),
    nonfinite='stop',
    pixel_loss=dict(
        loss_type='mse', target_norm='none', type='PixelReconstructionLoss'),
    recfac=1.0,
    student=dict(
        depth=6,
        embed_dims=128,
        img_size=64,
        num_frames=8,
        num_heads=4,
        patch_size=8,
        tubelet_size=2,
        type='VideoViT'),
    teacher=None,
    type='AMDPretrainer')
num_frames = 8
num_views = 2
optim_wrapper = dict(
    clip_grad=dict(max_norm=1.0),
    optimizer=dict(
        betas=(
            0.9,
            0.95,
        ), lr=0.0015, type='AdamW', weight_decay=0.05),
    paramwise_cfg=dict(
        bias_decay_mult=0.0,
        custom_keys=dict(mask_token=dict(decay_mult=0.0)),
        flat_decay_mult=0.0,
        norm_decay_mult=0.0),
    type='OptimWrapper')
param_scheduler = [
    dict(
        begin=0,
        by_epoch=True,
        convert_to_iter_based=True,
        end=1,
        start_factor=0.01,
        type='LinearLR'),
    dict(
        T_max=59,
        begin=1,
        by_epoch=True,
        convert_to_iter_based=True,
        end=60,
        eta_min=1e-05,
        type='CosineAnnealingLR'),
]
randomness = dict(seed=0)
resume = False
test_cfg = None
tiny_vit = dict(
    img_size=64, num_frames=8, patch_size=8, tubelet_size=2, type='VideoViT')
train_cfg = dict(
    max_epochs=60, type='ResumableEpochBasedTrainLoop', val_interval=61)
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        ann_file='/work/runs/v2_full/data/teacher_pool.txt',
        data_prefix=dict(video='/work/runs/v2_full/data/videos'),
        on_bad_clip='pad',
        pipeline=[
            dict(type='DecordInit'),
            dict(
                clip_len=8, frame_interval=2, num_clips=1,
                type='SampleFrames'),
            dict(type='DecordDecode'),
            dict(
                num_views=2,
                transforms=[
                    dict(
                        input_size=64,
                        max_wh_scale_gap=1,
                        random_crop=False,
                        scales=(
                            1,
                            0.875,
                            0.75,
                            0.66,
                        ),
                        type='MultiScaleCrop'),
                    dict(keep_ratio=False, scale=(
                        64,
                        64,
                    ), type='Resize'),
                    dict(input_format='NCTHW', type='FormatShape'),
                    dict(
                        grid=(
                            4,
                            8,
                            8,
                        ),
                        mode='tube',
                        student_ratio=0.75,
                        teacher_ratio=0.75,
                        type='AsymmetricTubeMask'),
                ],
                type='RepeatedAugment'),
            dict(
                algorithm_keys=(
                    'mask_stu',
                    'mask_tea',
                ),
                type='PackActionInputs'),
        ],
        type='RobustVideoDataset'),
    num_workers=0,
    persistent_workers=False,
    sampler=dict(shuffle=True, type='DefaultSampler'))
train_pipeline = [
    dict(type='DecordInit'),
    dict(clip_len=8, frame_interval=2, num_clips=1, type='SampleFrames'),
    dict(type='DecordDecode'),
    dict(
        num_views=2,
        transforms=[
            dict(
                input_size=64,
                max_wh_scale_gap=1,
                random_crop=False,
                scales=(
                    1,
                    0.875,
                    0.75,
                    0.66,
                ),
                type='MultiScaleCrop'),
            dict(keep_ratio=False, scale=(
                64,
                64,
            ), type='Resize'),
            dict(input_format='NCTHW', type='FormatShape'),
            dict(
                grid=(
                    4,
                    8,
                    8,
                ),
                mode='asymmetric',
                student_ratio=0.9,
                teacher_ratio=0.75,
                type='AsymmetricTubeMask'),
        ],
        type='RepeatedAugment'),
    dict(algorithm_keys=(
        'mask_stu',
        'mask_tea',
    ), type='PackActionInputs'),
]
val_cfg = None
vis_backends = [
    dict(_scope_='mmaction', type='LocalVisBackend'),
]
visualizer = dict(
    _scope_='mmaction',
    type='ActionVisualizer',
    vis_backends=[
        dict(type='LocalVisBackend'),
    ])
work_dir = '/work/runs/v2_full/teacher'
