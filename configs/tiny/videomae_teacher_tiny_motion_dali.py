# Stage 1 of the demo (videomae_teacher_tiny_motion.py) on the DALI data
# path; the data section is that of amd_tiny_motion_dali.py.
_base_ = ['./videomae_teacher_tiny_motion.py']

num_frames = 8
img_size = 64
num_views = 2
mask = dict(type='AsymmetricTubeMask', mode='asymmetric', student_ratio=0.9,
            teacher_ratio=0.75, grid=(num_frames // 2, img_size // 8, img_size // 8))
train_pipeline = [
    dict(type='ProbeVideo'),
    dict(type='SampleFrames', clip_len=num_frames, frame_interval=2, num_clips=1),
    dict(type='DALIViews', num_views=num_views, transforms=[
        dict(type='MultiScaleCrop', input_size=img_size,
             scales=(1, 0.875, 0.75, 0.66), random_crop=False,
             max_wh_scale_gap=1, lazy=True),
        dict(type='Resize', scale=(img_size, img_size), keep_ratio=False, lazy=True),
        mask,
    ]),
    dict(type='PackDALIPlan', algorithm_keys=('mask_stu', 'mask_tea')),
]
train_dataloader = dict(
    collate_fn=dict(type='dali_collate', device='auto', num_threads=2),
    dataset=dict(type='DALIVideoDataset', pipeline=train_pipeline,
                 on_bad_clip='skip'))
