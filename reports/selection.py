"""Which runs make a table's cells: the selection `bench report` and `bench reproduce` take
(the dataset, the seed pairs, the extra settings, the threshold rule), parsed and checked
once. Pandas-free: the command line builds it before any table is compiled."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.errors import BenchError
from reports.protocol import THRESHOLD_RULES

PairKey = tuple[int, int]  # (seed, teacher_seed): the two seed axes a cell is measured over
Seeds = int | Sequence[int]  # a count N (0 … N-1) or the seeds themselves


def check_threshold(threshold: str) -> str:
    if threshold not in THRESHOLD_RULES:
        raise BenchError(f"--threshold must be one of {', '.join(THRESHOLD_RULES)} "
                         f"(got {threshold!r})")
    return threshold


def parse_seeds(text: str, option: str = "--seeds") -> Seeds:
    """`5` → 5 (seeds 0 … 4), `10-14` → [10, …, 14], `3,7` → [3, 7], `2-2` → [2]: a list
    names the only seeds a table counts (e.g. held-out seeds for a final check)."""
    try:
        if text.strip().isdigit():
            seed_values(int(text))  # a count must be ≥ 1
            return int(text)
        values = []
        for part in text.split(","):
            lo, dash, hi = part.strip().partition("-")
            values += range(int(lo), int(hi) + 1) if dash else [int(lo)]
        return seed_values(values)
    except (ValueError, BenchError):
        raise BenchError(f"{option} {text!r}: give a count (5), a range (10-14, 2-2) or a "
                         "list (3,7) of seeds ≥ 0") from None


def seed_values(seeds: Seeds) -> list[int]:
    """The seeds a complete cell has: a count N means 0 … N-1."""
    values = list(range(seeds)) if isinstance(seeds, int) else sorted({int(s) for s in seeds})
    if not values or values[0] < 0:
        raise BenchError(f"seeds must be ≥ 1 in number and ≥ 0 (got {seeds!r})")
    return values


def wanted_pairs(seeds: Seeds, teacher_seeds: Seeds = 1) -> list[PairKey]:
    """Every (seed, teacher_seed) a complete cell has: seeds × teacher seeds."""
    return [(s, t) for t in seed_values(teacher_seeds) for s in seed_values(seeds)]


@dataclass(frozen=True)
class CellSelection:
    """Which runs make a table's cells, as `bench report` and `bench reproduce` select them:
    the dataset; the (seed, teacher_seed) pairs a complete cell has (a count N: 0 … N-1, and
    other pairs in the store count too; a list: only those); the extra settings every run was
    made with (`sets`, `epochs`); which seed mIoU is read (`threshold`: best, fixed or
    heldout). `strict=False` matches on variant + the row's own settings only; rows whose
    records differ in provenance are refused unless `mixed_provenance` (then flagged).
    `dataset_given`: False when the user named no --dataset, so a table whose rows are not
    synth's (the final table's VOC/COCO models) can pick its own (`dataset_for`)."""

    dataset: str = "synth"
    seeds: Seeds = 1
    teacher_seeds: Seeds = 1
    sets: tuple[str, ...] = ()
    epochs: int | None = None
    threshold: str = "best"
    strict: bool = True
    mixed_provenance: bool = False
    dataset_given: bool = True

    def dataset_for(self, default: str) -> str:
        """The dataset the user named, else the table's own default."""
        return self.dataset if self.dataset_given else default

    def __post_init__(self) -> None:
        check_threshold(self.threshold)
        object.__setattr__(self, "sets", tuple(self.sets or ()))
        for name in ("seeds", "teacher_seeds"):  # a list of seeds kept hashable
            value = getattr(self, name)
            if not isinstance(value, int):
                object.__setattr__(self, name, tuple(value))

    @property
    def pairs(self) -> list[PairKey]:
        """Every (seed, teacher_seed) a complete cell with no runs yet has."""
        return wanted_pairs(self.seeds, self.teacher_seeds)

    def missing(self, have: Iterable[PairKey]) -> list[PairKey]:
        """The pairs a cell holding `have` (its pairs after `only_listed`) lacks, by the rule
        that counts its runs: a list names the seeds a cell must have; a count N asks for N of
        them, any seeds, so the cell's own seeds count and only the shortfall is missing
        (filled from 0 up). A table's n and its missing commands agree (issue 32: seed 5
        alone was n = 1 beside a missing `--seed 0`)."""
        have = set(have)
        out: list[PairKey] = []
        for teacher in _complete({t for _, t in have}, self.teacher_seeds):
            seeds = {s for s, t in have if t == teacher}
            out += [(s, teacher) for s in _complete(seeds, self.seeds) if s not in seeds]
        return out


def _complete(have: set[int], want: Seeds) -> list[int]:
    """The values of one seed axis a complete cell has, given those it has."""
    values = seed_values(want)  # validates a count too
    if not isinstance(want, int):
        return values
    out, candidate = sorted(have), 0
    while len(out) < want:
        if candidate not in have:
            out.append(candidate)
        candidate += 1
    return out
