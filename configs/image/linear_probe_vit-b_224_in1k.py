# Linear probe of the ViT-B image student.
_base_ = ['./_image_linear_probe_base.py']
model = dict(backbone=dict(embed_dims=768, num_heads=12),
             cls_head=dict(in_channels=768))
load_from = 'work_dirs/amd_vit-b_mae-l-teacher_224_in1k/student_mmaction.pth'
