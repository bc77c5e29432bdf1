# The micro-scale reproduction protocol of AMD's central claims
# (tools/reproduce_paper.py, docs/reproduce.md). Everything that decides the
# outcome is fixed here, before any result was looked at: data, model
# sizes (the configs/tiny files), epochs of every stage, seeds, variants.
# Do not edit these numbers to make a variant win; a changed protocol is a
# new experiment and must be reported as such.
#
# Sizing (idle 2-core machine, torch CPU): see docs/reproduce.md.

# Synthetic SSV2-like data: 6 motion-direction classes (temporal order
# decides the label), VP9 .webm, 24 frames of 64x64. With per_seed=True
# every seed writes its own clips (seed = data.seed + run seed), so the seed
# spread covers data, teacher and training randomness, not training alone.
data = dict(num_train=240, num_val=96, num_frames=24, size=64, ext='webm',
            seed=1000, per_seed=True)
seeds = [0, 1, 2]

# Stage configs are files in configs/tiny/; epochs are per stage and the
# same for every student (the paper's "equal pre-training epochs").
# The teacher (128 wide, 6 blocks, plain VideoMAE) is pre-trained once per
# seed on that seed's data, for 3x the students' epochs (the paper's teacher
# is a larger model trained longer: VideoMAE ViT-L, 1600 epochs, against
# 200 for the students). More clips and fewer epochs than the demo: for the
# same compute, more distinct clips generalise better.
# probe=True: the teacher is linear-probed too (a diagnosis: is it a
# teacher worth distilling from?).
teacher = dict(config='videomae_teacher_tiny_motion.py', epochs=24,
               batch_size=8, probe=True)
pretrain = dict(epochs=8, batch_size=8)
finetune = dict(config='finetune_tiny_motion.py', epochs=6, batch_size=8)
linear_probe = dict(config='linear_probe_tiny_motion.py', epochs=5,
                    batch_size=8)

# Students: 96 wide, 4 blocks, 3 heads, all with the same student mask ratio
# (0.9). `manner`: FeatureAligner manner ('none' = plain VideoMAE, no
# teacher); `mask`: AsymmetricTubeMask mode; `teacher_ratio`: the teacher's
# mask ratio ('asymmetric' only). DMAE = symmetric masks + direct alignment.
variants = dict(
    videomae=dict(label='VideoMAE', manner='none', mask='tube'),
    amd_serial=dict(label='AMD serial D+G', manner='serial', mask='asymmetric',
                    teacher_ratio=0.75),
    amd_parallel=dict(label='AMD parallel D+G', manner='parallel',
                      mask='asymmetric', teacher_ratio=0.75),
    amd_direct=dict(label='direct only', manner='direct', mask='asymmetric',
                    teacher_ratio=0.75),
    amd_generation=dict(label='generation only', manner='generation',
                        mask='asymmetric', teacher_ratio=0.75),
    dmae=dict(label='DMAE (symmetric)', manner='direct', mask='symmetric',
              teacher_ratio=0.9),
    amd_serial_tr50=dict(label='AMD serial, teacher ratio 0.5',
                         manner='serial', mask='asymmetric', teacher_ratio=0.5),
)

# --quick: the headline comparison only (VideoMAE vs AMD serial), 2 seeds,
# fewer clips and epochs. Keys here replace the ones above; `variants`
# lists the names kept.
quick = dict(
    data=dict(num_train=144, num_val=48),
    seeds=[0, 1],
    teacher=dict(epochs=16),
    pretrain=dict(epochs=6),
    finetune=dict(epochs=5),
    linear_probe=dict(epochs=4),
    variants=['videomae', 'amd_serial'],
)
