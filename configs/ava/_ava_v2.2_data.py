# Runtime, data and schedule shared by the AVA v2.2 configs.
# AVA v2.2 raw frames + annotations as mmaction2 prepares them
# (tools/data/ava in mmaction2): 30 fps frames img_00001.jpg..., FAIR
# person proposals, the 60-class ActivityNet 2019 label map for evaluation.
# 16 frames at interval 4 around each keyframe; train at a random 256 crop
# of frames rescaled to short side 256..320, test on whole frames at short
# side 256 (non-square: the backbone resizes its position table).
_base_ = ['../_base_/amd_runtime.py']

data_root = 'data/ava/rawframes'
anno_root = 'data/ava/annotations'
ann_file_train = f'{anno_root}/ava_train_v2.2.csv'
ann_file_val = f'{anno_root}/ava_val_v2.2.csv'
exclude_file_train = f'{anno_root}/ava_train_excluded_timestamps_v2.2.csv'
exclude_file_val = f'{anno_root}/ava_val_excluded_timestamps_v2.2.csv'
label_file = f'{anno_root}/ava_action_list_v2.2_for_activitynet_2019.pbtxt'
proposal_file_train = f'{anno_root}/ava_dense_proposals_train.FAIR.recall_93.9.pkl'
proposal_file_val = f'{anno_root}/ava_dense_proposals_val.FAIR.recall_93.9.pkl'

clip_len = 16
frame_interval = 4
train_pipeline = [
    dict(type='SampleAVAFrames', clip_len=clip_len, frame_interval=frame_interval),
    dict(type='RawFrameDecode'),
    dict(type='RandomRescale', scale_range=(256, 320)),
    dict(type='RandomCrop', size=256),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='SampleAVAFrames', clip_len=clip_len, frame_interval=frame_interval,
         test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='AVADataset', ann_file=ann_file_train,
                 exclude_file=exclude_file_train, label_file=label_file,
                 proposal_file=proposal_file_train,
                 data_prefix=dict(img=data_root), pipeline=train_pipeline))
# Whole frames of different aspect ratios: one clip per batch at test.
val_dataloader = dict(
    batch_size=1, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='AVADataset', ann_file=ann_file_val,
                 exclude_file=exclude_file_val, label_file=label_file,
                 proposal_file=proposal_file_val,
                 data_prefix=dict(img=data_root), pipeline=val_pipeline,
                 test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='AVAMetric', ann_file=ann_file_val,
                     label_file=label_file, exclude_file=exclude_file_val)
test_evaluator = val_evaluator

# mmaction2's VideoMAE AVA schedule: 20 epochs, 5 warm-up, AdamW 1.25e-4 at
# 64 clips, layer-wise decay 0.75 over 12 blocks.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20, val_begin=1,
                 val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=15, eta_min=0, by_epoch=True,
         begin=5, end=20, convert_to_iter_based=True),
]
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1.25e-4, weight_decay=0.05),
    constructor='LearningRateDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.75, decay_type='layer_wise', num_layers=12),
    clip_grad=dict(max_norm=40, norm_type=2))
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
auto_scale_lr = dict(enable=False, base_batch_size=64)
