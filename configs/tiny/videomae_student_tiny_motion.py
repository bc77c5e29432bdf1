# The control: a plain VideoMAE student of the AMD student's size and epochs.
_base_ = ['./_tiny_base.py']
model = dict(teacher=None, alignment=None)
