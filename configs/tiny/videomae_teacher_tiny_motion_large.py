# The larger teacher of protocol v3's capacity comparison (the paper's
# teacher-size ablation at micro scale): plain VideoMAE pre-training of a
# ViT 192 wide, 8 blocks, 6 heads (head width 32, as every tiny model), about
# 3x the tiny teacher's cost per iteration (width^2 x depth). Decoder and
# recipe are the tiny teacher's.
_base_ = ['./videomae_teacher_tiny_motion.py']
model = dict(student=dict(embed_dims=192, depth=8, num_heads=6))
