"""The pre-registered protocol's numbers that reports print (README, "Protocol on synth").

`NOOP_NOISE_*` is the smallest effect worth claiming: how far a change that should do
nothing (λ 0.05 → 0.0500001, another seed of the same cell) moves a paired Δ. It is data,
measured under the protocol and written here by hand with the command that measured it;
`None` means not measured yet, and then no Δ is marked as a claim.
"""

from __future__ import annotations

# Smallest paired Δ of seed mIoU (points) worth claiming; None = not measured yet.
NOOP_NOISE_MIOU: float | None = None
# Smallest paired Δ of context_fp (percentage points) worth claiming; None = not measured yet.
NOOP_NOISE_CONTEXT_FP: float | None = None

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
