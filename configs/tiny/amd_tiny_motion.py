# Stage 2 of the demo: AMD student (96 wide, 4 blocks) distilled from the
# tiny VideoMAE teacher of stage 1, serial D+G alignment at (2,4)<->(3,6).
_base_ = ['./_tiny_base.py']
model = dict(teacher=dict(
    checkpoint='work_dirs/videomae_teacher_tiny_motion/epoch_8.pth'))
