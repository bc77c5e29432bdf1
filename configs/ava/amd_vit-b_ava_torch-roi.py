# AVA v2.2 with an AMD ViT-B student (method.md §6: token map backbone,
# Fast R-CNN style person RoI head, RoIAlign 8x8 + temporal pooling +
# multi-label linear classifier over 80 classes, FAIR person proposals,
# mAP@0.5). The detector is plain torch: no mmdet, no compiled mmcv ops.
# Set the AMD pre-training checkpoint (or a K400 fine-tuned one for the
# paper's 33.5 mAP setting) with
#   --cfg-options model.backbone.pretrained=<checkpoint.pth>
_base_ = ['./_ava_v2.2_data.py']

model = dict(
    type='AVAPersonDetector',
    backbone=dict(type='ViTTokenMap', img_size=224, patch_size=16,
                  num_frames=16, tubelet_size=2, embed_dims=768, depth=12,
                  num_heads=12, drop_path_rate=0.2,
                  pretrained='work_dirs/amd_vit-b_vit-l-teacher_16x224_k400/epoch_200.pth'),
    roi_head=dict(type='PersonRoIHead', in_channels=768, num_classes=81,
                  roi_size=8, featmap_stride=16, sampling_ratio=0,
                  aligned=True, temporal_pool='avg', spatial_pool='max',
                  dropout_ratio=0.5),
    data_preprocessor=dict(type='ActionDataPreprocessor',
                           mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCTHW'),
    # MaxIoUAssignerAVA(pos_iou_thr=0.9) + RandomSampler(num=32, pos_fraction=1)
    train_cfg=dict(pos_iou_thr=0.9, max_rois=32, add_gt_as_proposals=True))
