# AMD: ViT-S student (384/12/6), 4-block 192-wide decoder, frozen VideoMAE
# ViT-B teacher aligned at layers 6 and 12 (serial D+G, 2-block generators).
model = dict(
    type='AMDPretrainer',
    data_preprocessor=dict(type='ActionDataPreprocessor',
                           mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCTHW'),
    student=dict(type='VideoViT', embed_dims=384, depth=12, num_heads=6,
                 img_size=224, patch_size=16, num_frames=16, tubelet_size=2),
    decoder=dict(type='PixelDecoder', embed_dims=192, depth=4, num_heads=3),
    teacher=dict(
        type='FrozenTeacher', taps=(6, 12),
        checkpoint='checkpoints/videomae_vit-b_pretrain.pth',
        encoder=dict(type='VideoViT', embed_dims=768, depth=12, num_heads=12,
                     img_size=224, patch_size=16, num_frames=16,
                     tubelet_size=2)),
    # The authors' switches: separate layer lists (student_direct_taps,
    # teacher_direct_taps, student_gen_taps, teacher_gen_taps; None = the
    # *_taps pair), loss factors (recfac below, dirfac, genfac), loss_type
    # 'mse' (their l2) | 'l1' | 'smooth_l1' (their sml1, beta 1.0), raw 0-1
    # pixel targets (head.target_norm='none'). generator_heads=None:
    # teacher width // 64, as theirs.
    alignment=dict(type='FeatureAligner', manner='serial',
                   student_taps=(6, 12), teacher_taps=(6, 12),
                   generator_depth=2, generator_heads=None, dirfac=1.0, genfac=1.0,
                   loss=dict(type='FeatureAlignmentLoss', loss_type='mse')),
    head=dict(type='ReconstructionHead', target_norm='channel',
              loss=dict(type='PixelReconstructionLoss', loss_type='mse')),
    recfac=1.0,
    nonfinite='stop')
