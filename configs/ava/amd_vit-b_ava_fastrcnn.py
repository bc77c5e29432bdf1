# The same AVA v2.2 detector through mmaction2's standard route: mmdet's
# FastRCNN with mmaction2's AVARoIHead / SingleRoIExtractor3D / BBoxHeadAVA
# and MaxIoUAssignerAVA, for users with mmdet>=3 and full mmcv 2.1.0
# (compiled RoIAlign). Without them, loading this config stops with an error
# saying so (amd_mmaction/transfer/ava/require_mmdet.py); use
# amd_vit-b_ava_torch-roi.py instead. The backbone is the AMD ViT token map,
# which loads AMD pre-training checkpoints as they are.
_base_ = ['./_ava_v2.2_data.py']

custom_imports = dict(
    imports=['amd_mmaction', 'amd_mmaction.transfer.ava.require_mmdet'],
    allow_failed_imports=False)

model = dict(
    type='FastRCNN',
    _scope_='mmdet',
    backbone=dict(type='mmaction.ViTTokenMap', img_size=224, patch_size=16,
                  num_frames=16, tubelet_size=2, embed_dims=768, depth=12,
                  num_heads=12, drop_path_rate=0.2,
                  pretrained='work_dirs/amd_vit-b_vit-l-teacher_16x224_k400/epoch_200.pth'),
    roi_head=dict(
        type='AVARoIHead',
        bbox_roi_extractor=dict(type='SingleRoIExtractor3D',
                                roi_layer_type='RoIAlign', output_size=8,
                                featmap_stride=16, with_temporal_pool=True),
        bbox_head=dict(type='BBoxHeadAVA', background_class=True,
                       in_channels=768, num_classes=81, multilabel=True,
                       dropout_ratio=0.5)),
    data_preprocessor=dict(type='ActionDataPreprocessor', _scope_='mmaction',
                           mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCTHW'),
    train_cfg=dict(rcnn=dict(
        assigner=dict(type='MaxIoUAssignerAVA', pos_iou_thr=0.9,
                      neg_iou_thr=0.9, min_pos_iou=0.9),
        sampler=dict(type='RandomSampler', num=32, pos_fraction=1,
                     neg_pos_ub=-1, add_gt_as_proposals=True),
        pos_weight=1.0)),
    test_cfg=dict(rcnn=None))
