# Something-Something V2: uniform segment sampling (TSN style) of 16
# frames, no flip (left/right are classes), RandAugment m7 n4, random
# erasing 0.25; test 2 clips (segment offsets) x 3 crops at short side 224.
# RobustVideoDataset: the lists are checked when built (file:line for a bad
# line or label, a missing or 0-byte video), labels against the model's
# cls_head.num_classes before the run (DataListCheckHook); an unreadable clip
# is logged and counted, a short one kept, as in pre-training (docs/reliability.md).
dataset_type = 'RobustVideoDataset'
list_checks = dict(on_bad_clip='pad', check_files=True, require_label=True)
data_root = 'data/sthv2/videos'
ann_file_train = 'data/sthv2/sthv2_train_list_videos.txt'
ann_file_val = 'data/sthv2/sthv2_val_list_videos.txt'
num_frames = 16
img_size = 224
num_views = 2  # augmented views per decoded training video
erase = dict(type='RandomErasing', erase_prob=0.25, mode='rand',
             fill_color=[123.675, 116.28, 103.53],
             fill_std=[58.395, 57.12, 57.375])
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='UniformSample', clip_len=num_frames, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    # 2 independently augmented views of each decoded video (the authors'
    # --num_sample 2); MultiViewTimeSformerHead gives both the video's label.
    dict(type='RepeatedAugment', num_views=num_views, stack_keys=(), transforms=[
        dict(type='VideoRandAugment', magnitude=7, num_layers=4,
             magnitude_std=0.5),
        dict(type='RandomResizedCrop', area_range=(0.08, 1.0),
             aspect_ratio_range=(3 / 4, 4 / 3)),
        dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
        erase,
        dict(type='FormatShape', input_format='NCTHW'),
    ]),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(type='UniformSample', clip_len=num_frames, num_clips=1,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, img_size)),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='UniformSample', clip_len=num_frames, num_clips=2,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, img_size)),
    dict(type='ThreeCrop', crop_size=img_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
# 16 videos per GPU (32 clips with their views), as the authors' scripts.
train_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, **list_checks, ann_file=ann_file_train,
                 data_prefix=dict(video=data_root), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, **list_checks, ann_file=ann_file_val,
                 data_prefix=dict(video=data_root), pipeline=val_pipeline,
                 test_mode=True))
test_dataloader = dict(
    batch_size=1, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, **list_checks, ann_file=ann_file_val,
                 data_prefix=dict(video=data_root), pipeline=test_pipeline,
                 test_mode=True))
