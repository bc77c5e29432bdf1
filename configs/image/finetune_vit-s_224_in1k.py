# Fine-tune the ViT-S image student (amd_vit-s_mae-b-teacher_224_in1k.py);
# paper: 82.1 top-1. Layer decay 0.75.
_base_ = ['./_image_finetune_base.py']
load_from = 'work_dirs/amd_vit-s_mae-b-teacher_224_in1k/student_mmaction.pth'
