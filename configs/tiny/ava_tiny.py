# Tiny AVA detection on the synthetic AVA-format fixture
# (tools/make_ava_fixture.py -> data/ava_tiny): the tiny AMD student
# (96 wide, 4 blocks, 3 heads; 8 frames, patch 8, tubelet 2) returning its
# token map, a person RoI head with plain-torch RoIAlign, mmaction2's
# AVADataset and AVAMetric. Runs on CPU in seconds.
# Start from an AMD pre-training checkpoint with
#   --cfg-options model.backbone.pretrained=work_dirs/amd_tiny_motion/epoch_6.pth
_base_ = ['../_base_/amd_runtime.py']

data_root = 'data/ava_tiny'
anno_root = data_root + '/annotations'
frames_root = data_root + '/rawframes'
ann_file_train = anno_root + '/ava_train_tiny.csv'
ann_file_val = anno_root + '/ava_val_tiny.csv'
exclude_file_train = anno_root + '/ava_train_excluded_timestamps_tiny.csv'
exclude_file_val = anno_root + '/ava_val_excluded_timestamps_tiny.csv'
label_file = anno_root + '/ava_action_list_tiny.pbtxt'
proposal_file_train = anno_root + '/ava_dense_proposals_train_tiny.pkl'
proposal_file_val = anno_root + '/ava_dense_proposals_val_tiny.pkl'
# The fixture's frames span seconds 900..906 at 30 fps (keyframes 902-904).
timestamps = dict(timestamp_start=900, timestamp_end=906, fps=30)

num_frames = 8
model = dict(
    type='AVAPersonDetector',
    backbone=dict(type='ViTTokenMap', img_size=64, patch_size=8,
                  num_frames=num_frames, tubelet_size=2, embed_dims=96,
                  depth=4, num_heads=3, drop_path_rate=0.0, pretrained=None),
    roi_head=dict(type='PersonRoIHead', in_channels=96, num_classes=81,
                  roi_size=8, featmap_stride=8, temporal_pool='avg',
                  spatial_pool='max', dropout_ratio=0.2),
    data_preprocessor=dict(type='ActionDataPreprocessor',
                           mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCTHW'),
    train_cfg=dict(pos_iou_thr=0.9, max_rois=32),
)

train_pipeline = [
    dict(type='SampleAVAFrames', clip_len=num_frames, frame_interval=2),
    dict(type='RawFrameDecode'),
    dict(type='RandomRescale', scale_range=(64, 72)),
    dict(type='RandomCrop', size=64),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs'),
]
# Whole frames at test (short side 64: a 64x96 clip, an 8x12 token grid).
val_pipeline = [
    dict(type='SampleAVAFrames', clip_len=num_frames, frame_interval=2,
         test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 64)),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='AVADataset', ann_file=ann_file_train,
                 exclude_file=exclude_file_train, label_file=label_file,
                 proposal_file=proposal_file_train,
                 data_prefix=dict(img=frames_root), pipeline=train_pipeline,
                 **timestamps))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='AVADataset', ann_file=ann_file_val,
                 exclude_file=exclude_file_val, label_file=label_file,
                 proposal_file=proposal_file_val,
                 data_prefix=dict(img=frames_root), pipeline=val_pipeline,
                 test_mode=True, **timestamps))
test_dataloader = val_dataloader
val_evaluator = dict(type='AVAMetric', ann_file=ann_file_val,
                     label_file=label_file, exclude_file=exclude_file_val)
test_evaluator = val_evaluator

max_epochs = 20
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_begin=1, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999),
                   weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=40, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 2, eta_min=1e-5,
         by_epoch=True, begin=2, end=max_epochs, convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(interval=5),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
