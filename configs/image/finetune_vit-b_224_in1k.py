# Fine-tune the ViT-B image student (amd_vit-b_mae-l-teacher_224_in1k.py);
# paper: 84.6 top-1. MAE's ViT-B recipe: layer decay 0.65.
_base_ = ['./_image_finetune_base.py']
model = dict(backbone=dict(embed_dims=768, num_heads=12),
             cls_head=dict(in_channels=768))
optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.65))
load_from = 'work_dirs/amd_vit-b_mae-l-teacher_224_in1k/student_mmaction.pth'
