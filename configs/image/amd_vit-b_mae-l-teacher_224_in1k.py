# AMD ImageMAE: ViT-B student (768/12/12, decoder 384/4/6) from the official
# MAE ViT-L encoder (1024/24/16), aligned at student 6, 12 <-> teacher 12, 24.
# Paper: IN-1K fine-tuned top-1 84.6. Teacher file: MAE's
# mae_pretrain_vit_large.pth (facebookresearch/mae), put under checkpoints/.
_base_ = ['./_image_pretrain_base.py']
model = dict(
    student=dict(embed_dims=768, num_heads=12),
    decoder=dict(embed_dims=384, num_heads=6),
    teacher=dict(taps=(12, 24),
                 checkpoint='checkpoints/mae_pretrain_vit_large.pth',
                 encoder=dict(embed_dims=1024, depth=24, num_heads=16)),
    alignment=dict(teacher_taps=(12, 24)))
