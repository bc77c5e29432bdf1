# Linear probe of the ViT-S image student.
_base_ = ['./_image_linear_probe_base.py']
load_from = 'work_dirs/amd_vit-s_mae-b-teacher_224_in1k/student_mmaction.pth'
