# AMD pre-training as published (authors' scripts/pretrain/slurm_train/
# vits_ssv2_pt.sh): ViT-S student (384/12/6, decoder 192/4/3) distilled from a
# frozen VideoMAE v1 ViT-L teacher (1024/24/16), student layers (6, 12) <->
# teacher layers (12, 24). Teacher: the authors' VideoMAEv1_vit_L_ssv2_pt_2400e.pth
# (VideoMAE v1 ViT-L pre-trained 2400 epochs on SSV2), put at the path below
# (the same file as the ViT-B student's config). 32 GPUs x 16 clips x 4 views.
_base_ = ['../_base_/amd_runtime.py', '../_base_/models/amd_vit-s_vit-l.py',
          '../_base_/ssv2_pretrain_data.py', '../_base_/pretrain_schedule.py']
model = dict(teacher=dict(
    checkpoint='checkpoints/videomae_vit-l_ssv2_pretrain.pth'))
