# method.md §6, after the authors' run_amd_pretrain.py and
# scripts/pretrain/slurm_train/*_pt.sh: AdamW (0.9, 0.95), wd 0.05 (none on
# 1-D params, biases, norms, mask tokens), lr 1.2e-3 per 256 *decoded clips*
# (the 4 views of a clip do not count: 16 clips per GPU x 32 GPUs -> 2.4e-3),
# cosine per iteration to 1e-5 per 256 clips (2e-5 at 32 GPUs) after 10
# warm-up epochs from 0, grad clip 0.02, mixed precision.
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
# lr above is per 256 decoded clips (batch_size counts clips, not views);
# the runner rescales it to GPUs x batch_size. eta_min_ratio keeps the min lr
# at 1e-5 per 256 clips, as the authors scale min_lr with the lr.
auto_scale_lr = dict(enable=True, base_batch_size=256)
