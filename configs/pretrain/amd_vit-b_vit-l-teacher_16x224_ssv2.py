# AMD pre-training, ViT-B student (768/12/12, decoder 384/6) from a VideoMAE
# ViT-L teacher (1024/24/16) aligned at teacher layers 12 and 24, as published
# (authors' scripts/pretrain/slurm_train/vitb_ssv2_pt.sh). Teacher: the authors'
# VideoMAEv1_vit_L_ssv2_pt_2400e.pth (VideoMAE v1 ViT-L, 2400 epochs on SSV2),
# put at the path below. 32 GPUs x 16 clips x 4 views.
_base_ = ['../_base_/amd_runtime.py', '../_base_/models/amd_vit-b_vit-l.py',
          '../_base_/ssv2_pretrain_data.py', '../_base_/pretrain_schedule.py']
model = dict(teacher=dict(
    checkpoint='checkpoints/videomae_vit-l_ssv2_pretrain.pth'))
