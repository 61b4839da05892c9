"""Provenance on the report side: rows whose records were made under different protocols
(split, ground truth, scales, CRF, class wording, teacher, …) must not share a column
unnoticed. The record field is `provenance` (written by `harness.provenance`); records
from before it existed are tolerated and shown as `—`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.record import RunRecord

# what must agree across every row of a column
# (data_fingerprint: a folder's files, harness/data/folder.py; a relabelled folder is other data)
COLUMN_KEYS = ("split", "n_images", "gt_source", "scales", "flips", "crf", "class_names",
               "clip_arch", "random_weights", "data_fingerprint")
# what must agree among the runs of one teacher seed (the teacher's weights): the seed
# axis moves it on synth, nothing else may
TEACHER_KEY = "clip_weights_sha256"


def column_mismatch(labelled: list[tuple[str, int, RunRecord]], metric: str = "seed_miou"
                    ) -> str:
    """One line naming each provenance key whose value differs across the given (row label,
    teacher seed, record) triples, with the rows that have each value; "" when they agree.
    `metric`: the seed mIoU field shown, whose recorded threshold rule must agree too."""
    seen: dict[str, dict[str, list[str]]] = {}
    for label, teacher, rec in labelled:
        prov = rec.provenance
        if not isinstance(prov, dict):
            continue
        for key in COLUMN_KEYS:
            if prov.get(key) is not None:  # None: the run could not know it
                _note(seen, key, prov[key], label)
        rule = prov.get("threshold_rule")
        if isinstance(rule, dict) and rule.get(metric) is not None:
            _note(seen, f"threshold_rule of {metric}", rule[metric], label)
        if prov.get(TEACHER_KEY) is not None:  # None: a run without a teacher (cam)
            _note(seen, f"{TEACHER_KEY} (teacher_seed {teacher})", prov[TEACHER_KEY], label)
    parts = [f"{key}: " + " vs ".join(f"{value} ({', '.join(rows)})"
                                      for value, rows in values.items())
             for key, values in seen.items() if len(values) > 1]
    return ("rows with different provenance in one column — " + "; ".join(parts)) if parts else ""


def _note(seen: dict[str, dict[str, list[str]]], key: str, value: Any, label: str) -> None:
    rows = seen.setdefault(key, {}).setdefault(_short(value), [])
    if label not in rows:
        rows.append(label)


def _short(value: Any) -> str:
    text = str(value)
    return text[:12] if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


def split_text(records: list[RunRecord]) -> str:
    """The split the cell was scored on, with its image count (`val (300)`); `—` when the
    records predate provenance."""
    splits = sorted({f"{p.get('split', '?')} ({p.get('n_images', '?')})"
                     for p in (r.provenance for r in records) if isinstance(p, dict)})
    return ", ".join(splits) if splits else ("—" if records else "")


def recorded_rules(records: list[RunRecord], field: str) -> list[str]:
    """How the records say their `field` (seed_miou, …) was thresholded (provenance
    `threshold_rule`), each distinct wording once."""
    rules = [(r.provenance or {}).get("threshold_rule") for r in records]
    return sorted({rule[field] for rule in rules if isinstance(rule, dict) and rule.get(field)})
