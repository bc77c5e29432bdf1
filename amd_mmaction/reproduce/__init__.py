"""The micro-scale reproduction of the paper's claims (tools/reproduce.py,
docs/reproduce.md): the protocol and its low-label addendum
(:mod:`.protocol`), the training stages shared with the quickstart
(:mod:`.stages`), the runs (:mod:`.runner`, :mod:`.lowlabel`, their records
in :mod:`.records`), the report, and the evaluations: frozen features, k-NN
and linear-probe evaluators, paired statistics by seed, the teacher gate.
Kept apart from the speed benchmarks (:mod:`amd_mmaction.benchmark`).
Modules are imported on use (no heavy imports here)."""
