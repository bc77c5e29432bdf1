# Kinetics-400 pre-training data (H.264 .mp4), 16 frames stride 4,
# multi-scale crop without flip, 4 views (crop + mask) per decoded clip.
# ssv2_pretrain_data.py is this file with its own videos and stride 2.
# RobustVideoDataset: a broken clip is logged, counted and replaced instead of
# ending the run (docs/reliability.md); 'pad' keeps short clips (looped by
# SampleFrames, as VideoMAE does) and skips unreadable ones.
dataset_type = 'RobustVideoDataset'
data_root = 'data/kinetics400/videos_train'
ann_file_train = 'data/kinetics400/kinetics400_train_list_videos.txt'
num_frames = 16
frame_interval = 4
img_size = 224
patch_size = 16
tubelet_size = 2
num_views = 4
mask = dict(type='AsymmetricTubeMask', mode='asymmetric', student_ratio=0.9,
            teacher_ratio=0.75,
            grid=(num_frames // tubelet_size, img_size // patch_size,
                  img_size // patch_size))

train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=num_frames,
         frame_interval=frame_interval, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
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
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, ann_file=ann_file_train,
                 data_prefix=dict(video=data_root), pipeline=train_pipeline,
                 on_bad_clip='pad'))
