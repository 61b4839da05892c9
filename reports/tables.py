"""The papers' tables as data: which variant and hyperparameters make each row, and the
published value it is compared with (from `reports.published`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reports import published as P


@dataclass(frozen=True)
class Row:
    label: str
    variant: str
    published: P.Published
    hparams: dict[str, Any] = field(default_factory=dict)

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


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _ablation() -> Table:
    s, q = P.SEMPLES_T4, P.QACLIMS_T4
    return Table("ablation", "Loss ablations (SemPLeS Table 4, QA-CLIMS Table 4)", (
        Row("SemPLeS: L_match only", "semples/match-only", s["match-only"]),
        Row("SemPLeS: + L_refine, random prompts", "semples/random-prompts", s["random-prompts"]),
        Row("SemPLeS: + L_prompt^T + L_refine", "semples/text-prompt-only", s["text-prompt-only"]),
        Row("SemPLeS: + L_prompt^I + L_refine", "semples/image-prompt-only",
            s["image-prompt-only"]),
        Row("SemPLeS: all losses", "semples", s["full"]),
        Row("QA-CLIMS: L_FRC", "qa-clims/frc", q["frc"]),
        Row("QA-CLIMS: L_BRC", "qa-clims/brc", q["brc"]),
        Row("QA-CLIMS: L_FRC + L_BRC", "qa-clims/frc-brc", q["frc-brc"]),
        Row("QA-CLIMS: L_FRC + L_BRC + L_REG", "qa-clims", q["frc-brc-reg"]),
    ), "Seed mIoU with loss terms removed.")


def _loss_weight() -> Table:
    rows = tuple(Row(f"λ = {lam:g}", "semples", pub, {"lambda_refine": lam})
                 for lam, pub in P.SEMPLES_T5.items())
    return Table("loss-weight", "SemPLeS refinement loss weight λ (SemPLeS Table 5)", rows,
                 "λ = 0 means only L_match.", x="lambda_refine", x_label="λ (lambda_refine)")


def _scheme() -> Table:
    s = P.SEMPLES_T6
    return Table("scheme", "SemPLeS learning schemes (SemPLeS Table 6)", (
        Row("joint training", "semples/joint", s["joint"]),
        Row("sequential, 1 round", "semples", s["sequential-1"]),
        Row("alternate, 2 rounds", "semples/alternate-r2", s["alternate-2"]),
        Row("alternate, 3 rounds", "semples/alternate-r3", s["alternate-3"]),
    ))


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
    ), "All rows train with L_FRC + L_BRC + L_REG.")


def _fat() -> Table:
    f = P.QACLIMS_FAT
    return Table("fat", "QA-CLIMS foreground adaptive thresholding (QA-CLIMS Sec. 4.3)", (
        Row("without FAT", "qa-clims/no-fat", f[False]),
        Row("with FAT", "qa-clims", f[True]),
    ))


def _omega() -> Table:
    rows = tuple(Row(f"ω = {w:g}", "qa-clims", pub, {"omega": w})
                 for w, pub in P.QACLIMS_OMEGA.items())
    return Table("omega", "QA-CLIMS filter ratio ω (QA-CLIMS Appendix B, Fig. 5)", rows,
                 "Only ω = 0.1 has a number in the paper text.", x="omega", x_label="ω (omega)")


def _seeds() -> Table:
    s, q = P.SEMPLES_T1_SEED, P.QACLIMS_T1_CAM
    return Table("seeds", "Seed (CAM) mIoU of the four methods (SemPLeS and QA-CLIMS Table 1)", (
        Row("CAM", "cam", q["CAM"]),
        Row("CLIMS", "clims", s["CLIMS"]),
        Row("CLIMS", "clims", q["CLIMS"]),
        Row("SemPLeS", "semples", s["SemPLeS"]),
        Row("QA-CLIMS", "qa-clims", q["QA-CLIMS"]),
    ), "One row per published number; a method published in both papers has two rows.")


_BUILDERS = {"ablation": _ablation, "loss-weight": _loss_weight, "scheme": _scheme,
             "questions": _questions, "fat": _fat, "omega": _omega, "seeds": _seeds}

TABLES: dict[str, Table] = {name: build() for name, build in _BUILDERS.items()}
