"""The pre-registered protocol's numbers that reports print (docs/protocol-v2.md).

`NOOP_NOISE_*` is the smallest effect worth claiming: how far a change that should do
nothing (λ 0.05 → 0.0500001, another seed of the same cell) moves a paired Δ. It is data,
measured under the protocol and written here by hand with the command that measured it;
`None` means not measured yet, and then no Δ is marked as a claim.
"""

from __future__ import annotations

from dataclasses import dataclass

# Measured 2026-12-01 under protocol version 2 (docs/protocol-v2.md) on main 19dd1ed, 10 pairs =
# seeds 0–4 × teacher_seed 0, 1: `bench run semples --seed S --set teacher_seed=T` (λ = 0.05,
# from `bench reproduce seeds --dataset synth --seeds 5 --teacher-seeds 2`) against
# `bench run semples --seed S --set teacher_seed=T --set lambda_refine=0.0500001`.
# Paired Δ mIoU (pairs 0/0 0/1 1/0 1/1 … 4/1): -0.65 -0.28 +0.09 +0.00 +0.39 +0.44 -0.84 +0.10
# -0.83 +0.64 (max |Δ| 0.84; the cell's seed-to-seed std 2.71); context_fp: +0.16 +0.26 -0.02
# -0.00 -0.04 -0.08 +0.10 -0.03 +0.15 -0.02 (max |Δ| 0.26; std 0.51). Version 1's figures
# (2026-11-25, main 21f4b14): 0.61 mIoU, 0.07 context_fp points.
# Smallest paired Δ of seed mIoU (points) worth claiming: mean |paired Δ| of the no-op.
NOOP_NOISE_MIOU: float | None = 0.43
# Smallest paired Δ of context_fp (percentage points) worth claiming, the same way.
NOOP_NOISE_CONTEXT_FP: float | None = 0.09

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


@dataclass(frozen=True)
class Protocol:
    """A registered protocol: the docs page that states it and the cells its claims need (run
    seeds 0 … seeds-1 × teacher_seed 0 … teacher_seeds-1 on `dataset`). Its current results
    page is `bench report page --protocol VERSION` over a store of its runs."""

    version: int
    page: str  # under docs/
    seeds: int = 5
    teacher_seeds: int = 2
    dataset: str = "synth"


# Version 1's training (momentum 0.9, no per-replica loss scale, …) is not main's: its only
# results are its dated page. Version 2 is the one main runs (docs/protocol-v2.md).
PROTOCOLS = {1: Protocol(1, "protocol.md"), 2: Protocol(2, "protocol-v2.md")}
CURRENT_PROTOCOL = 2
