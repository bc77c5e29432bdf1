# AMD as published for ViT-B (authors' scripts/pretrain/slurm_train/
# vitb_*_pt.sh): ViT-B student (768/12/12, decoder 384/4/6) from the
# VideoMAE v1 ViT-L teacher of amd_vit-s_vit-l.py, student layers (6, 12)
# <-> teacher layers (12, 24).
_base_ = ['./amd_vit-s_vit-l.py']
model = dict(student=dict(embed_dims=768, num_heads=12),
             decoder=dict(embed_dims=384, num_heads=6))
