# AMD as published for ViT-S (authors' scripts/pretrain/slurm_train/
# vits_*_pt.sh): the ViT-S student (384/12/6, decoder 192/4/3) of
# amd_vit-s_vit-b.py distilled from a frozen VideoMAE v1 ViT-L teacher
# (1024/24/16), student layers (6, 12) <-> teacher layers (12, 24). The
# pre-training configs set the teacher checkpoint of their data set.
_base_ = ['./amd_vit-s_vit-b.py']
model = dict(
    teacher=dict(taps=(12, 24),
                 checkpoint='checkpoints/videomae_vit-l_pretrain.pth',
                 encoder=dict(embed_dims=1024, depth=24, num_heads=16)),
    alignment=dict(teacher_taps=(12, 24)))
