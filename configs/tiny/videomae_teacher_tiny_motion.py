# Stage 1 of the demo: plain VideoMAE pre-training of the tiny teacher
# (128 wide, 6 blocks). Its checkpoint becomes the AMD teacher.
_base_ = ['./_tiny_base.py']
model = dict(student=dict(embed_dims=128, depth=6, num_heads=4),
             decoder=dict(embed_dims=64, depth=1, num_heads=2),
             teacher=None, alignment=None)
max_epochs = 8
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-5,
         by_epoch=True, begin=1, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs + 1)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
