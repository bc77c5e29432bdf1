"""Experiments on the micro-scale reproduction (protocol v2): frozen
features, k-NN and linear-probe evaluators, paired statistics by seed and
the teacher gate. Kept apart from the speed benchmarks
(:mod:`amd_mmaction.benchmark`). Modules are imported on use (no heavy
imports here)."""
