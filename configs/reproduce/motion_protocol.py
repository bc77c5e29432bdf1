# The micro-scale reproduction protocol (tools/reproduce.py, docs/reproduce.md),
# "protocol v2" in the results: fixed in this file before any student of v2
# was trained. Protocol v1's code is retired; its results stay in
# docs/reproduce.md as history.
#
# What v2 changed against v1, and why (design, not method):
# - ONE teacher per protocol run, trained with plain VideoMAE on an unlabeled
#   pool larger than the students' training set (pool = the students' train
#   clips + `num_pool` more), for far more iterations than any student gets,
#   as in the paper (ViT-L, 1600-2400 epochs vs 200). v1 trained a small
#   teacher per seed: the spread of v1 followed which seed got a usable one.
# - The teacher must pass a GATE, reported before any student is trained:
#   masked-pixel loss on the validation clips clearly below the trivial
#   predictor's (ratio <= gate.recon_margin), and a linear probe on frozen
#   features >= gate.probe_factor x chance. The random-initialised teacher's
#   probe is printed beside it (a random ViT's pooled features already carry
#   some motion information on these clips: the pilot runs, docs/reproduce.md).
# - Reconstruction targets are raw 0-1 tubelets (the authors' engine with
#   `normlize_target` off; `model.head.target_norm='none'`) for the
#   teacher AND every student. Pilot runs (docs/reproduce.md) showed why:
#   with per-tubelet normalised 2x8x8 targets these flat, compressed clips make
#   the all-zero predictor nearly optimal (127/128 = 0.992; v1 teachers ended
#   at 0.984-0.986). All students share the target, so the comparison stays
#   fair; the method (masks, alignment, losses) is unchanged.
# - A random-teacher CONTROL: AMD serial distilled from an untrained teacher
#   of the same shape. AMD serial > control = knowledge transfer, not a
#   regularising side effect of the alignment losses.
# - Evaluation of the representation: k-NN on frozen features (no training),
#   a linear probe on frozen features, and fine-tuning with its curves; all
#   with the multi-view test (2 clips x 3 crops).
# - Statistics: differences paired by seed, 95% paired-t intervals (and a
#   bootstrap cross-check); a claim holds when its interval excludes zero.
#
# Sizing: `python tools/reproduce.py plan` (2 worker processes, one
# thread each, after the teacher, which uses both cores).

# Synthetic SSV2-like data (amd_mmaction.data.synthetic: 6 motion classes,
# temporal order decides the label), one data set for the whole run (the
# teacher is shared, so the seeds vary training randomness, not the data).
data = dict(source='synthetic', num_pool=1080, num_train=360, num_val=240,
            num_frames=24, size=64, ext='webm', seed=2000)
# Bring your own data instead (mmaction2 VideoDataset lists, `path label`):
# data = dict(source='lists', train='train.txt', val='val.txt',
#             root='videos/', num_classes=10, pool='unlabeled.txt')
# `pool` (optional) lists unlabeled clips (a label column is allowed and
# ignored) that the teacher pre-trains on together with the train clips.

# Every pre-training stage uses this target (see above).
target_norm = 'none'

# Stage configs are named relative to configs/ (the copy installed with the
# package) or given as absolute paths.
# The teacher: configs/tiny/videomae_teacher_tiny_motion.py (128 wide,
# 6 blocks, 4 heads), its own tube mask ratio, trained once, 2 threads.
teacher = dict(config='tiny/videomae_teacher_tiny_motion.py', epochs=60,
               batch_size=8, mask_ratio=0.75, seed=0, threads=2,
               gate=dict(recon_margin=0.9, probe_factor=3.0))

# Students: 96 wide, 4 blocks (configs/tiny), equal epochs for every variant.
pretrain = dict(epochs=10, batch_size=8)

# Evaluations of every student (frozen features: final-normed tokens, mean
# pooled, 2 clips x 3 crops from finetune_tiny_motion.py's test pipeline).
evaluation = dict(
    knn=dict(k=20, temperature=0.07),
    linear=dict(),
    finetune=dict(config='tiny/finetune_tiny_motion.py', epochs=12, batch_size=8,
                  val_interval=2),
)

seeds = dict(headline=[0, 1, 2, 3, 4], ablation=[0, 1, 2])

# `group` picks the seed list. `teacher='random'`: distil from an untrained
# teacher of the teacher's shape (the control).
variants = dict(
    videomae=dict(label='VideoMAE', manner='none', mask='tube',
                  group='headline'),
    amd_serial=dict(label='AMD serial D+G', manner='serial', mask='asymmetric',
                    teacher_ratio=0.75, group='headline'),
    amd_serial_random=dict(label='AMD serial, random teacher (control)',
                           manner='serial', mask='asymmetric',
                           teacher_ratio=0.75, teacher='random',
                           group='headline'),
    amd_parallel=dict(label='AMD parallel D+G', manner='parallel',
                      mask='asymmetric', teacher_ratio=0.75, group='ablation'),
    amd_direct=dict(label='direct only', manner='direct', mask='asymmetric',
                    teacher_ratio=0.75, group='ablation'),
    amd_generation=dict(label='generation only', manner='generation',
                        mask='asymmetric', teacher_ratio=0.75,
                        group='ablation'),
    dmae=dict(label='DMAE (symmetric)', manner='direct', mask='symmetric',
              teacher_ratio=0.9, group='ablation'),
    amd_serial_tr50=dict(label='AMD serial, teacher ratio 0.5',
                         manner='serial', mask='asymmetric',
                         teacher_ratio=0.5, group='ablation'),
)

# Claims: (better, worse, what it stands for). Paired by seed over the seeds
# both variants ran.
claims = [
    ('amd_serial', 'videomae', 'AMD > VideoMAE (the headline)'),
    ('amd_serial', 'amd_serial_random', 'knowledge transfer, not regularisation'),
    ('amd_serial', 'amd_parallel', 'serial >= parallel (Table 1)'),
    ('amd_parallel', 'amd_direct', 'D+G >= direct only (Table 1)'),
    ('amd_parallel', 'amd_generation', 'D+G >= generation only (Table 1)'),
    ('amd_serial_tr50', 'amd_serial', 'teacher ratio 0.5 >= 0.75 (Table 1)'),
    ('amd_serial', 'dmae', 'asymmetric >= symmetric (DMAE)'),
]

# Parallel worker processes for the students (one thread each).
workers = 2

# --quick: teacher, VideoMAE, AMD serial and the random-teacher control,
# 3 seeds, k-NN and linear probe only (no fine-tuning). Keys replace the
# ones above; `variants` lists the names kept.
# The quick teacher was first 12 epochs (720 iterations): it failed its gate
# (masked-pixel ratio 0.923, linear probe 35.8%; docs/results/v2_quick_try1),
# before any student ran. Raised to 27 epochs, as the gate intends; students
# 8 -> 6 epochs to stay within 15 minutes.
quick = dict(
    data=dict(num_pool=240, num_train=240, num_val=120),
    teacher=dict(epochs=27, threads=2),
    pretrain=dict(epochs=6),
    evaluation=dict(finetune=None),
    seeds=dict(headline=[0, 1, 2], ablation=[0, 1, 2]),
    variants=['videomae', 'amd_serial', 'amd_serial_random'],
)
