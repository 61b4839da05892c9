"""The papers' tables as data: which variant and hyperparameters make each row, the
published value it is compared with (from `methods.published`), and the reference row every
other row's paired Δ is taken against (`Table.reference`, or a row's own `reference`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from methods import published as P


@dataclass(frozen=True)
class Row:
    label: str
    variant: str
    published: P.Published
    hparams: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None  # label of this row's reference row (default: the table's)
    control: str = ""  # "oracle": read cam records' oracle_* fields instead of the method's

    def sets(self) -> list[str]:
        """The `--set key=value` strings that, on top of the variant, make this row."""
        return [f"{k}={_fmt(v)}" for k, v in self.hparams.items()]

    @property
    def settings(self) -> str:
        return " ".join(self.sets())


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    rows: tuple[Row, ...]
    description: str = ""
    x: str | None = None  # the hyperparameter a curve plot runs along (λ, ω)
    x_label: str = ""
    reference: str | None = None  # label of the row paired Δs are taken against

    def reference_of(self, row: Row) -> Row | None:
        """The row this row's paired Δ is against (None: the table has no reference)."""
        label = row.reference or self.reference
        return next((r for r in self.rows if r.label == label), None) if label else None

    def reference_text(self) -> str:
        """The table's reference rows in words, for every printout."""
        own = {r.reference: [] for r in self.rows if r.reference}
        for r in self.rows:
            if r.reference and r.label != r.reference:
                own[r.reference].append(r.label)
        parts = [f"`{ref}` for " + ", ".join(f"`{label}`" for label in labels)
                 for ref, labels in own.items()]
        if self.reference:
            parts.append(f"`{self.reference}`" + (" for the other rows" if parts else ""))
        return "; ".join(parts)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    return str(v)


ORACLE = Row("oracle (cam, co-occurring context zeroed)", "cam", P.Published(
    None, "positive control", "cam's maps with the co-occurring context zeroed: the headroom "
    "a method that removes co-occurring context can reach (issue 11); no paper number; scored "
    "at its own best t, its Δ against the reference's best-t mIoU whatever --threshold"),
    control="oracle")


def _ablation() -> Table:
    s, q = P.SEMPLES_T4, P.QACLIMS_T4
    match_only = "SemPLeS: L_match only"
    return Table("ablation", "Loss ablations (SemPLeS Table 4, QA-CLIMS Table 4)", (
        Row("CAM", "cam", P.QACLIMS_T1_CAM["CAM"]),
        ORACLE,
        Row(match_only, "semples/match-only", s["match-only"]),
        Row("SemPLeS: + L_refine, random prompts", "semples/random-prompts", s["random-prompts"],
            reference=match_only),
        Row("SemPLeS: + L_prompt^T + L_refine", "semples/text-prompt-only", s["text-prompt-only"],
            reference=match_only),
        Row("SemPLeS: + L_prompt^I + L_refine", "semples/image-prompt-only",
            s["image-prompt-only"], reference=match_only),
        Row("SemPLeS: all losses", "semples", s["full"], reference=match_only),
        Row("QA-CLIMS: L_FRC", "qa-clims/frc", q["frc"]),
        Row("QA-CLIMS: L_BRC", "qa-clims/brc", q["brc"]),
        Row("QA-CLIMS: L_FRC + L_BRC", "qa-clims/frc-brc", q["frc-brc"]),
        Row("QA-CLIMS: L_FRC + L_BRC + L_REG", "qa-clims", q["frc-brc-reg"]),
    ), "Seed mIoU with loss terms removed. Paired Δ: SemPLeS rows against L_match only (what "
       "each added loss buys), the others against plain CAM.", reference="CAM")


def _loss_weight() -> Table:
    rows = tuple(Row(f"λ = {lam:g}", "semples", pub, {"lambda_refine": lam})
                 for lam, pub in P.SEMPLES_T5.items())
    return Table("loss-weight", "SemPLeS refinement loss weight λ (SemPLeS Table 5)", rows,
                 "λ = 0 means only L_match; paired Δ against it.", x="lambda_refine",
                 x_label="λ (lambda_refine)", reference="λ = 0")


def _scheme() -> Table:
    s = P.SEMPLES_T6
    return Table("scheme", "SemPLeS learning schemes (SemPLeS Table 6)", (
        Row("joint training", "semples/joint", s["joint"]),
        Row("sequential, 1 round", "semples", s["sequential-1"]),
        Row("alternate, 2 rounds", "semples/alternate-r2", s["alternate-2"]),
        Row("alternate, 3 rounds", "semples/alternate-r3", s["alternate-3"]),
    ), "Paired Δ against the sequential scheme (the paper's default).",
        reference="sequential, 1 round")


def _questions() -> Table:
    q = P.QACLIMS_T5
    return Table("questions", "QA-CLIMS question sets (QA-CLIMS Table 5)", (
        Row("RITC only (category, 'no {class}')", "qa-clims/q-category", q["category"]),
        Row("+ QAPE: fine-grained names", "qa-clims/q-fine", q["fine"]),
        Row("+ QAPE: object aliases", "qa-clims/q-alias", q["alias"]),
        Row("+ QAPE: surrounding objects", "qa-clims/q-object", q["object"]),
        Row("+ QAPE: scene", "qa-clims/q-scene", q["scene"]),
        Row("+ QAPE: fine-grained + aliases", "qa-clims/q-fine-alias", q["fine-alias"]),
        Row("+ QAPE: objects + scene", "qa-clims/q-object-scene", q["object-scene"]),
        Row("+ QAPE: all questions", "qa-clims", q["all"]),
    ), "All rows train with L_FRC + L_BRC + L_REG. Paired Δ against RITC only.",
        reference="RITC only (category, 'no {class}')")


def _fat() -> Table:
    f = P.QACLIMS_FAT
    return Table("fat", "QA-CLIMS foreground adaptive thresholding (QA-CLIMS Sec. 4.3)", (
        Row("without FAT", "qa-clims/no-fat", f[False]),
        Row("with FAT", "qa-clims", f[True]),
    ), reference="without FAT")


def _omega() -> Table:
    rows = tuple(Row(f"ω = {w:g}", "qa-clims", pub, {"omega": w})
                 for w, pub in P.QACLIMS_OMEGA.items())
    return Table("omega", "QA-CLIMS filter ratio ω (QA-CLIMS Appendix B, Fig. 5)", rows,
                 "Only ω = 0.1 has a number in the paper text. Paired Δ against ω = 0 (no filter).",
                 x="omega", x_label="ω (omega)", reference="ω = 0")


def _seeds() -> Table:
    s, q = P.SEMPLES_T1_SEED, P.QACLIMS_T1_CAM
    return Table("seeds", "Seed (CAM) mIoU of the four methods (SemPLeS and QA-CLIMS Table 1)", (
        Row("CAM", "cam", q["CAM"]),
        Row("CLIMS", "clims", s["CLIMS"]),
        Row("CLIMS", "clims", q["CLIMS"]),
        Row("SemPLeS", "semples", s["SemPLeS"]),
        Row("QA-CLIMS", "qa-clims", q["QA-CLIMS"]),
        ORACLE,
    ), "One row per published number; a method published in both papers has two rows. "
       "Paired Δ against CAM.", reference="CAM")


_BUILDERS = {"ablation": _ablation, "loss-weight": _loss_weight, "scheme": _scheme,
             "questions": _questions, "fat": _fat, "omega": _omega, "seeds": _seeds}

TABLES: dict[str, Table] = {name: build() for name, build in _BUILDERS.items()}
