# mmaction2 Recognizer3D + VisionTransformer (ViT-B by default) with the
# fine-tuning recipe of AMD / VideoMAE (method.md §6): drop path 0.1,
# mean-pooled tokens + fc_norm + linear head, label smoothing 0.1,
# mixup 0.8 / cutmix 1.0 (one of the two per batch), AdamW (0.9, 0.999),
# wd 0.05, layer-wise lr decay 0.75 (mmaction2's constructor). RandAugment
# and random erasing are in the data configs.
# Leaf configs set num_classes (head and blending), epochs and lr.
_base_ = ['../../_base_/amd_runtime.py']

# Pre-training checkpoint in any supported format (ours, official
# VideoMAE / AMD), converted while the model is initialised; or leave None
# and use ``load_from`` with a file from tools/export_checkpoint.py.
pretrained = None
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='VisionTransformer', img_size=224, patch_size=16,
        embed_dims=768, depth=12, num_heads=12, mlp_ratio=4, qkv_bias=True,
        num_frames=16, tubelet_size=2, norm_cfg=dict(type='LN', eps=1e-6),
        drop_path_rate=0.1, use_mean_pooling=True,
        init_cfg=dict(type='AMDPretrained', checkpoint=pretrained)),
    # Head weights ~ N(0, 0.02 x init_scale 0.001 = 2e-5), bias 0, as the
    # authors' run_class_finetuning.py (init_scale) and modeling_finetune.py.
    # MultiViewTimeSformerHead: TimeSformerHead whose loss repeats each
    # video's label for its views (the data configs' 2 views per video).
    cls_head=dict(type='MultiViewTimeSformerHead', num_classes=400,
                  in_channels=768, init_std=2e-5, average_clips='prob',
                  label_smooth_eps=0.1),
    data_preprocessor=dict(
        type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], format_shape='NCTHW',
        blending=dict(type='RandomBatchAugment', probs=[0.5, 0.5], augments=[
            dict(type='MixupBlending', alpha=0.8, num_classes=400),
            dict(type='CutmixBlending', alpha=1.0, num_classes=400)])))

# lr is per 256 *videos* (batch_size counts videos; their 2 views do not
# count), as the authors' run_class_finetuning.py: mmengine scales it by
# (GPUs x batch_size) / 256, keeping the layer-wise ratios.
auto_scale_lr = dict(enable=True, base_batch_size=256)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    constructor='LearningRateDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.75, decay_type='layer_wise',
                       num_layers=12))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=30, val_begin=1,
                 val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
val_evaluator = dict(type='AccMetric')
test_evaluator = dict(type='AccMetric')
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=2,
                                     save_best='auto'))
