# Plain VideoMAE baseline (tube masking 90%, no teacher), ViT-B. The data
# pipeline's student mask is the 90% tube mask; its teacher mask is unused.
# Schedule: AMD's (200 epochs x 4 views, lr 1.2e-3 per 256 clips), the
# paper's equal-epoch baseline, not VideoMAE's own 800/1600-epoch script.
_base_ = ['../_base_/amd_runtime.py', '../_base_/models/videomae_vit-b.py',
          '../_base_/ssv2_pretrain_data.py', '../_base_/pretrain_schedule.py']
