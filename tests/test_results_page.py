"""`bench report page --protocol N`: a protocol's current results page, generated from the
results store (docs/results/index.md), and the page kept in docs/results/ is that output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import BenchError
from harness.store import ResultsStore
from reports import table_names
from reports.compile import compile_table
from reports.page import GENERATED, header, page
from reports.protocol import CURRENT_PROTOCOL, PROTOCOLS
from reports.selection import CellSelection
from tests.test_app import assert_one_line_error, bench_in_process

REPO = Path(__file__).resolve().parents[1]


def _record(root: Path, variant: str, seed: int, teacher: int, miou: float,
            dataset: str = "synth", flips: bool = True) -> None:
    name = f"{variant.replace('/', '-')}-{seed}-{teacher}-{dataset}"
    rec = {"method": variant.split("/")[0], "variant": variant, "dataset": dataset,
           "seed": seed, "seed_miou": miou, "status": "ok", "hparams": {},
           "config": {"params": {"teacher_seed": teacher}}, "per_class_iou": {},
           "finished_at": "2026-01-01T00:00:00", "package_version": "0.4.0.dev0",
           "git_rev": "abc123def456", "provenance": {"split": "eval", "flips": flips}}
    (root / name).mkdir(parents=True)
    (root / name / "result.json").write_text(json.dumps(rec))


def _store(tmp_path: Path) -> Path:
    """The fat table at pairs 0/0 and 1/0: without FAT 60, 64; with FAT 65, 70. A held-out
    pair (seed 11, teacher 5) and a voc run are in the store but not in the protocol's cells."""
    root = tmp_path / "runs"
    for seed, (without, with_) in enumerate([(60.0, 65.0), (64.0, 70.0)]):
        _record(root, "qa-clims/no-fat", seed, 0, without)
        _record(root, "qa-clims", seed, 0, with_)
    _record(root, "qa-clims", 11, 5, 99.0)
    _record(root, "qa-clims", 0, 0, 10.0, dataset="voc")
    return root


def test_page_holds_each_table_over_the_protocols_pairs_only(tmp_path):
    text = page(2, ResultsStore(_store(tmp_path)).records())
    assert text.startswith(f"# Results under protocol version 2\n\n{GENERATED}\n")
    assert "The store held 5 runs on synth, made by package version 0.4.0.dev0 at git " \
           "revision abc123def456." in text
    assert [line[3:] for line in text.splitlines() if line.startswith("## ")] == table_names()
    fat = text.split("## fat\n")[1].split("\n## ")[0]
    # means 62.0 ± 2.83 and 67.5 ± 3.54 (seed 11 left out: n = 2); paired diffs 5, 6: mean
    # 5.5, sd 0.707, 95 % CI 5.5 ± t(0.975, 1) · 0.707/√2 = 5.5 ± 6.35
    assert "| without FAT | qa-clims/no-fat |  | 2 | 62.0 ± 2.8 | ref |" in fat
    assert "| with FAT | qa-clims |  | 2 | 67.5 ± 3.5 | +5.5 [-0.9, +11.9] n=2 |" in fat
    assert "pairs (seed/teacher_seed) of every Δ: 0/0 1/0." in fat
    assert ("SemPLeS learning schemes (SemPLeS Table 6): not measured; `bench "
            "reproduce scheme --dataset synth --seeds 0-4 --teacher-seeds 0-1` measures it."
            in text)


def test_rows_of_different_provenance_are_shown_flagged_not_refused(tmp_path):
    """The seeds table's CLIP-ES runs no flip where CAM does: `bench report table seeds`
    refuses the mix without --mixed-provenance; the page shows the table, flagged."""
    root = tmp_path / "runs"
    _record(root, "cam", 0, 0, 42.0)
    _record(root, "clip-es", 0, 0, 18.0, flips=False)
    seeds = page(2, ResultsStore(root).records()).split("## seeds\n")[1].split("\n## ")[0]
    assert "| CAM | cam |  | 1 | 42.0 | ref |" in seeds
    assert "| CLIP-ES | clip-es |  | 1 | 18.0 | -24.0 n=1 |" in seeds
    assert ("- FLAGGED: rows with different provenance in one column — flips: True (CAM) vs "
            "False (CLIP-ES, CLIP-ES (SemPLeS))") in seeds
    with pytest.raises(BenchError, match="pass --mixed-provenance"):
        compile_table("seeds", ResultsStore(root).records(), select=CellSelection())


def test_the_command_prints_the_page_and_refuses_an_unknown_protocol(tmp_path, capsys):
    root = _store(tmp_path)
    code, out, _ = bench_in_process(capsys, "report", "page", "--protocol", "2",
                                    "--runs-dir", str(root))
    assert code == 0 and out == page(2, ResultsStore(root).records())
    assert_one_line_error(capsys, "--protocol 7: the registered versions are 1, 2",
                          "report", "page", "--protocol", "7", "--runs-dir", str(root))


def test_docs_keep_the_generated_page_of_the_current_protocol():
    """docs/results/protocol-vN.md is the command's output: its header is the generator's
    (only the store line differs between stores) and its sections are every table, in order."""
    p = PROTOCOLS[CURRENT_PROTOCOL]
    lines = (REPO / "docs" / "results" / f"protocol-v{p.version}.md").read_text().splitlines()
    fixed = header(p, [])[:-2]  # all but the store line and the blank after it
    again = (f"regenerate it: bench report page --protocol {p.version} --runs-dir STORE --out "
             f"docs/results/protocol-v{p.version}.md")
    assert lines[:len(fixed)] == fixed, again
    assert lines[len(fixed)].startswith("The store held "), again
    assert [line[3:] for line in lines if line.startswith("## ")] == table_names(), again
