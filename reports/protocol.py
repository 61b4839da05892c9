"""The pre-registered protocol's numbers that reports print (README, "Protocol on synth").

`NOOP_NOISE_*` is the smallest effect worth claiming: how far a change that should do
nothing (λ 0.05 → 0.0500001, another seed of the same cell) moves a paired Δ. It is data,
measured under the protocol and written here by hand with the command that measured it;
`None` means not measured yet, and then no Δ is marked as a claim.
"""

from __future__ import annotations

# Measured 2026-11-25 on main 21f4b14 (synth, protocol budgets), 10 pairs = seeds 0–4 ×
# teacher_seed 0, 1: `bench run semples --seed S --set teacher_seed=T` (λ = 0.05, from
# `bench reproduce ablation --dataset synth --seeds 5 --teacher-seeds 2`) against
# `bench run semples --seed S --set teacher_seed=T --set lambda_refine=0.0500001`.
# Paired Δ mIoU: -0.29 +1.18 +0.13 +1.01 +1.21 +0.34 -0.67 +0.41 +0.21 -0.63 (max |Δ| 1.21;
# the cell's seed-to-seed std 2.19); context_fp: max |Δ| 0.16 (std 0.41).
# Smallest paired Δ of seed mIoU (points) worth claiming: mean |paired Δ| of the no-op.
NOOP_NOISE_MIOU: float | None = 0.61
# Smallest paired Δ of context_fp (percentage points) worth claiming, the same way.
NOOP_NOISE_CONTEXT_FP: float | None = 0.07

CI_LEVEL = 0.95  # two-sided confidence of every paired Δ's interval

# --threshold: which seed mIoU a table shows (the record field, what it means, its label)
THRESHOLD_RULES: dict[str, tuple[str, str, str]] = {
    "best": ("seed_miou", "the best t on the eval split's own GT, which peeks", "best t"),
    "fixed": ("seed_miou_fixed", "a fixed t (CLIMS/IRN's 0.15)", "fixed t"),
    "heldout": ("seed_miou_heldout", "the t chosen on a held-out labelled split", "held-out t"),
}
# the record field holding the threshold each rule used
THRESHOLD_FIELDS = {"best": "best_threshold", "fixed": "fixed_threshold",
                    "heldout": "threshold_heldout"}
# the labelled split `--threshold heldout` cells are run with (`bench run --threshold-split`);
# synth and voc both have one, disjoint from the eval split
HELDOUT_SPLIT = "heldout"
