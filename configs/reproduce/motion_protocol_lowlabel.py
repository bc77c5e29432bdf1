# The protocol's low-label addendum (tools/reproduce.py lowlabel,
# docs/reproduce.md "Low-label fine-tuning"). It reads a finished protocol
# run (--from) and fine-tunes each of its pre-trained students again, on a
# small class-balanced part of the train clips.
#
# Why, and when it was decided: in the full v2 run, fine-tuning on all 360
# train clips reached 99-100% for every variant from the first seeds on
# (VideoMAE included), so the fine-tuning column cannot tell variants apart
# there: the data set is easy once 360 labels and 540 iterations are
# available. This addendum was written after seeing that ceiling and before
# any of its own results. v2 itself is unchanged; its fine-tuning column
# stays in the v2 report as it came out.
#
# What it changes against v2's fine-tuning: only the labeled clips
# (`per_class` per class, drawn once per seed with `subset_seed + seed`, the
# same draw for every variant of that seed, so the pairs stay paired) and the
# epochs (more epochs on fewer clips: 48 x 60 clips = 2/3 of v2's 12 x 360
# clip-iterations, past where v2's curves flatten). Recipe, model, the
# multi-view test on the same 240 validation clips, seeds, variants and
# claims are v2's.

per_class = 10
subset_seed = 3000

finetune = dict(config='tiny/finetune_tiny_motion.py', epochs=48, batch_size=8,
                val_interval=8)

# Parallel worker processes (one thread each).
workers = 2
