# Plain VideoMAE (tube masking 90%, no teacher): the ViT-B student and
# decoder of amd_vit-b_vit-l.py alone. The data pipeline's student mask is
# the 90% tube mask; its teacher mask is unused.
_base_ = ['./amd_vit-b_vit-l.py']
model = dict(teacher=None, alignment=None)
