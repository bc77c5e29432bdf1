# Protocol v3's low-label addendum: the third student measure of the
# dose-response (issue 21, item 1: k-NN, linear probe, low-label fine-tune).
# Written before any v3 student was trained, run on each data set's folder
# of a finished v3 run:
#     python tools/reproduce.py lowlabel configs/reproduce/teacher_protocol_lowlabel.py \
#         --from work_dirs/v3_full/motion      (then .../order)
# Every pre-trained student is fine-tuned again on `per_class` train clips per
# class (one class-balanced draw per seed, the same for every variant of that
# seed: differences stay paired) with the tiny fine-tuning recipe and the
# multi-view test; the report gives the dose-response and slope of its top-1.
# Sized to fit v3's 6-hour budget: 10 labels per class (60 clips on motion,
# 80 on order), 32 epochs (v2's addendum: 48), validation every 16.

per_class = 10
subset_seed = 3000

finetune = dict(config='tiny/finetune_tiny_motion.py', epochs=32, batch_size=8,
                val_interval=16)

workers = 2
