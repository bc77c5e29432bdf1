# Tiny fine-tuning on the synthetic motion videos (the demo's last stage):
# mmaction2 Recognizer3D + VisionTransformer (96 wide, 4 blocks, 3 heads,
# 8 frames 64x64, patch 8, tubelet 2) with the full recipe of method.md §6
# scaled down: layer decay 0.75, drop path 0.1, mixup 0.8 / cutmix 1.0,
# label smoothing 0.1, random erasing 0.25, warm-up + cosine. SSV2-style
# data (direction is the label: no flip), segment sampling; test 2 clips x
# 3 crops (on these square clips the three crops coincide).
_base_ = ['../finetune/_base_/vit_recognizer.py']

data_root = 'data/motion'
num_frames = 8
img_size = 64
num_classes = 6
max_epochs = 12
warmup_epochs = 1
# Set to a pre-training checkpoint (e.g. work_dirs/amd_tiny_motion/epoch_6.pth)
# or use load_from with an exported one.
pretrained = None
model = dict(
    backbone=dict(img_size=img_size, patch_size=8, num_frames=num_frames,
                  embed_dims=96, depth=4, num_heads=3,
                  init_cfg=dict(checkpoint=pretrained)),
    # pinned: the demo and reproduction protocol predate the published head
    # (MultiViewTimeSformerHead, init std 2e-5) of ../finetune/_base_
    cls_head=dict(type='TimeSformerHead', init_std=0.02,
                  num_classes=num_classes, in_channels=96),
    data_preprocessor=dict(blending=dict(augments=[
        dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
        dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)])))

erase = dict(type='RandomErasing', erase_prob=0.25, mode='rand',
             fill_color=[123.675, 116.28, 103.53],
             fill_std=[58.395, 57.12, 57.375])
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='UniformSample', clip_len=num_frames, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='RandomResizedCrop', area_range=(0.5, 1.0)),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    erase,
    dict(type='FormatShape', input_format='NCTHW'),
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


def _loader(ann, pipeline, batch_size, shuffle, test_mode):
    return dict(
        batch_size=batch_size, num_workers=0, persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=shuffle),
        dataset=dict(type='RobustVideoDataset', ann_file=ann,
                     data_prefix=dict(video=data_root + '/videos'),
                     pipeline=pipeline, test_mode=test_mode,
                     # list checked when built (docs/reliability.md)
                     num_classes=num_classes, check_files=True,
                     require_label=True, on_bad_clip='pad'))


train_dataloader = _loader(data_root + '/train.txt', train_pipeline, 8, True, False)
val_dataloader = _loader(data_root + '/val.txt', val_pipeline, 8, False, True)
test_dataloader = _loader(data_root + '/val.txt', test_pipeline, 4, False, True)

# Tiny batches: the lr is given as is, not per 256 clips.
auto_scale_lr = dict(enable=False)
optim_wrapper = dict(optimizer=dict(lr=2e-3),
                     paramwise_cfg=dict(num_layers=4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min_ratio=1e-2, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_begin=1, val_interval=max_epochs)
default_hooks = dict(logger=dict(interval=5),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1,
                                     save_best=None))
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
