# ViT-B AMD student pre-trained on Kinetics-400, fine-tuned on HMDB51: 50 epochs, lr 1e-3
# (our choice, after the common VideoMAE HMDB51 script; the paper gives no schedule).
# Recipe: method.md §6 (dense stride 4, 5x3 test). lr is per 256 videos (auto-scaled),
# 16 videos x 2 views per GPU, min lr 1e-6 per 256 videos as run_class_finetuning.py.
# Start from a pre-training checkpoint with
#   --cfg-options model.backbone.init_cfg.checkpoint=PRETRAIN.pth
# or from tools/export_checkpoint.py output with --cfg-options load_from=OUT.pth
_base_ = ['./_base_/vit_recognizer.py', './_base_/k400_finetune_data.py']
# HMDB51 split 1, videos under data/hmdb51/videos.
data_root = 'data/hmdb51/videos'
ann_file_train = 'data/hmdb51/hmdb51_train_split_1_videos.txt'
ann_file_val = 'data/hmdb51/hmdb51_val_split_1_videos.txt'
train_dataloader = dict(dataset=dict(ann_file=ann_file_train,
                                     data_prefix=dict(video=data_root)))
val_dataloader = dict(dataset=dict(ann_file=ann_file_val,
                                   data_prefix=dict(video=data_root)))
test_dataloader = dict(dataset=dict(ann_file=ann_file_val,
                                    data_prefix=dict(video=data_root)))
num_classes = 51
max_epochs = 50
warmup_epochs = 5
model = dict(
    cls_head=dict(num_classes=num_classes),
    data_preprocessor=dict(blending=dict(augments=[
        dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
        dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)])))
lr = 1e-3
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min_ratio=1e-6 / lr, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
