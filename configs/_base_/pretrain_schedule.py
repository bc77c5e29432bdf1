# method.md §6: AdamW (0.9, 0.95), wd 0.05 (none on 1-D params, biases,
# norms, mask tokens), lr = 1.2e-3 * batch / 256 where batch counts views
# (16 decoded clips x 4 views per GPU), cosine per iteration to 1e-5 after
# 10 warm-up epochs from 0, grad clip 0.02, mixed precision.
max_epochs = 200  # 200 passes x 4 views = the paper's "800 epochs"
warmup_epochs = 10
base_lr = 1.2e-3

optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.95),
                   weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       flat_decay_mult=0.0,
                       custom_keys={'mask_token': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=0.02))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min_ratio=1e-5 / base_lr, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
# resumes exactly from mid-epoch checkpoints too (docs/reliability.md)
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs + 1)
val_cfg = None
test_cfg = None
# lr above is for 256 views per step = 64 decoded clips x 4 views (the
# data config's num_views); the
# runner rescales it to the real batch (GPUs x batch_size decoded clips).
auto_scale_lr = dict(enable=True, base_batch_size=64)
