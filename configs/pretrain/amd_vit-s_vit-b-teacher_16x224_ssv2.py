# AMD pre-training, ViT-S student from a VideoMAE ViT-B teacher (taps 6, 12):
# a cheaper variant of our own, NOT the published setting (the authors'
# vits_ssv2_pt.sh uses a ViT-L teacher: amd_vit-s_vit-l-teacher_16x224_ssv2.py).
# (ViT-B: 86M parameters, ViT-L: 304M). Put the teacher's VideoMAE
# pre-training checkpoint at the path below.
_base_ = ['../_base_/amd_runtime.py', '../_base_/models/amd_vit-s_vit-b.py',
          '../_base_/ssv2_pretrain_data.py', '../_base_/pretrain_schedule.py']
model = dict(teacher=dict(
    checkpoint='checkpoints/videomae_vit-b_ssv2_pretrain.pth'))
