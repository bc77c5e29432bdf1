# ViT-B AMD student (ViT-L teacher) fine-tuned on Something-Something V2: 30 epochs, lr 5e-4.
# Recipe: method.md §6 (ViT-B SSV2). lr is per 256 videos (auto-scaled).
# Authors' script: scripts/finetune/slurm_train/vitb_ssv2_ft.sh, 16 GPUs x 16
# videos x 2 views; min lr 1e-6 per 256 videos, warm-up from 0 (run_class_finetuning.py).
# Start from a pre-training checkpoint with
#   --cfg-options model.backbone.init_cfg.checkpoint=PRETRAIN.pth
# or from tools/export_checkpoint.py output with --cfg-options load_from=OUT.pth
_base_ = ['./_base_/vit_recognizer.py', './_base_/ssv2_finetune_data.py']
num_classes = 174
max_epochs = 30
warmup_epochs = 5
model = dict(
    cls_head=dict(num_classes=num_classes),
    data_preprocessor=dict(blending=dict(augments=[
        dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
        dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)])))
lr = 5e-4
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min_ratio=1e-6 / lr, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
