# AMD ImageMAE: ViT-S student (384/12/6, decoder 192/4/3) from the official
# MAE ViT-B encoder, aligned at student 6, 12 <-> teacher 6, 12 (serial D+G).
# Paper: IN-1K fine-tuned top-1 82.1. Teacher file: MAE's
# mae_pretrain_vit_base.pth (facebookresearch/mae), put under checkpoints/.
_base_ = ['./_image_pretrain_base.py']
