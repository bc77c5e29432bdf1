# Something-Something V2 pre-training data (VP9 .webm): the Kinetics-400
# recipe of k400_pretrain_data.py (16 frames, multi-scale crop without flip,
# 4 views (crop + mask) per decoded clip, RobustVideoDataset with 'pad') on
# the SSV2 videos at frame stride 2.
_base_ = ['./k400_pretrain_data.py']
data_root = 'data/sthv2/videos'
ann_file_train = 'data/sthv2/sthv2_train_list_videos.txt'
frame_interval = 2
# The base's pipeline was built with its own stride (mmengine reads a base
# before its child), so it is rebuilt here: the same steps, SampleFrames at
# this stride.
train_pipeline = [
    dict(step, frame_interval=frame_interval)
    if step.type == 'SampleFrames' else step
    for step in _base_.train_pipeline]
train_dataloader = dict(dataset=dict(
    ann_file=ann_file_train, data_prefix=dict(video=data_root),
    pipeline=train_pipeline))
