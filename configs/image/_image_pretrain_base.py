# AMD in the ImageMAE setting (paper: IN-1K top-1 82.1 ViT-S / MAE-B teacher,
# 84.6 ViT-B / MAE-L teacher). An image is a one-frame clip: VideoViT with
# num_frames=1, tubelet_size=1, MAE's fixed 2-D sin-cos table; random patch
# masking = AsymmetricTubeMask on the (1, 14, 14) grid, student 75%, teacher
# 50% (student-visible is a subset of teacher-visible). Recipe: MAE's
# pre-training defaults (docs/image.md lists each choice).
_base_ = ['../_base_/amd_runtime.py']

img_size = 224
patch_size = 16
grid = (1, img_size // patch_size, img_size // patch_size)
data_root = 'data/imagenet'
mask = dict(type='AsymmetricTubeMask', mode='asymmetric', student_ratio=0.75,
            teacher_ratio=0.5, grid=grid)

# MAE's augmentation: RandomResizedCrop(scale 0.2-1, bicubic) + flip.
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
# ImageNet's train/ folder (one sub-folder per class); for a list file set
# ann_file='meta/train.txt' (lines "<path> <label>").
train_dataloader = dict(
    batch_size=128, num_workers=10, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='ImageListDataset', ann_file='',
                 data_prefix=dict(img=data_root + '/train'),
                 pipeline=train_pipeline))

# Students: MAE's encoder block (biased qkv) without the class token, so
# that they export exactly to mmaction2's VisionTransformer for
# fine-tuning (global pooling, MAE's fine-tuning default).
image_vit = dict(type='VideoViT', img_size=img_size, patch_size=patch_size,
                 num_frames=1, tubelet_size=1, pos_embed='sincos2d',
                 qkv_bias='qkv')
# Teachers: the official MAE encoders (class token, biased qkv, 2-D table).
mae_vit = dict(image_vit, with_cls_token=True)
model = dict(
    type='AMDPretrainer',
    data_preprocessor=dict(type='ActionDataPreprocessor',
                           mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCTHW'),
    student=dict(image_vit, embed_dims=384, depth=12, num_heads=6),
    # Decoder scaled like the video setting: half the student width, 4 blocks.
    decoder=dict(type='ImagePixelDecoder', embed_dims=192, depth=4,
                 num_heads=3),
    teacher=dict(type='FrozenTeacher', taps=(6, 12),
                 checkpoint='checkpoints/mae_pretrain_vit_base.pth',
                 encoder=dict(mae_vit, embed_dims=768, depth=12,
                              num_heads=12)),
    alignment=dict(type='FeatureAligner', manner='serial',
                   student_taps=(6, 12), teacher_taps=(6, 12),
                   generator_depth=2,
                   loss=dict(type='FeatureAlignmentLoss', loss_type='mse')),
    # MAE's norm_pix_loss: each patch normalised over all its values.
    head=dict(type='ReconstructionHead', target_norm='patch',
              loss=dict(type='PixelReconstructionLoss', loss_type='mse')),
    nonfinite='stop')

# MAE: AdamW (0.9, 0.95), wd 0.05, blr 1.5e-4 per 256 images (2.4e-3 at
# batch 4096), 40 warm-up epochs, cosine to 0, 800 epochs, no grad clipping.
max_epochs = 800
warmup_epochs = 40
base_lr = 2.4e-3
optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.95),
                   weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       flat_decay_mult=0.0,
                       custom_keys={'mask_token': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=0.0, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs + 1)
val_cfg = None
test_cfg = None
default_hooks = dict(checkpoint=dict(interval=20, max_keep_ckpts=3))
# lr above is for 4096 images per step; rescaled to GPUs x batch_size.
auto_scale_lr = dict(enable=True, base_batch_size=4096)
