# ruff: noqa: E501  (golden Markdown/CSV strings are as wide as the tables)
"""Reports: golden Markdown/CSV from a hand-written results store, missing-cell commands,
published values re-read from the papers, plots, and a resumable `reproduce` (no training:
the runner is faked)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.store import ResultsStore
from reports import get_table, table_names
from reports import published as P
from reports.compile import compile_table, expected_params
from reports.render import plot, to_csv, to_markdown
from reports.reproduce import missing_jobs

REPO = Path(__file__).resolve().parents[1]
PAPERS = next((p for p in (REPO.parent / "shared" / "papers", Path("/work/shared/papers"))
               if p.is_dir()), None)


def write_record(root: Path, name: str, **fields) -> None:
    rec = {"method": fields.get("variant", "x").split("/")[0], "dataset": "synth", "seed": 0,
           "hparams": {}, "status": "ok", "finished_at": "2025-01-01T00:00:00",
           "per_class_iou": {}, **fields}
    (root / name).mkdir(parents=True)
    (root / name / "result.json").write_text(json.dumps(rec))


@pytest.fixture
def store(tmp_path) -> Path:
    root = tmp_path / "runs"
    write_record(root, "a", variant="qa-clims/no-fat", seed=0, seed_miou=60.0, context_fp=10.0,
                 per_class_iou={"background": 80.0, "boat": 40.0})
    write_record(root, "b", variant="qa-clims/no-fat", seed=1, seed_miou=62.0, context_fp=12.0,
                 per_class_iou={"background": 82.0, "boat": 42.0})
    # ignored: a failed run, another dataset, and a stale re-run of seed 1 (older)
    write_record(root, "c", variant="qa-clims", seed=0, seed_miou=99.0, status="failed")
    write_record(root, "d", variant="qa-clims", seed=0, seed_miou=99.0, dataset="voc")
    write_record(root, "e", variant="qa-clims/no-fat", seed=1, seed_miou=10.0,
                 finished_at="2024-01-01T00:00:00")
    # loss-weight: λ = 0.05 measured on seed 0 only; λ = 0.1 run with another λ is not it
    write_record(root, "f", variant="semples", seed=0, seed_miou=70.25,
                 hparams={"lambda_refine": 0.05, "lambda_b": 2.4})
    write_record(root, "g", variant="semples", seed=0, seed_miou=50.0,
                 hparams={"lambda_refine": 0.2})
    return root


GOLDEN_FAT_MD = """\
### QA-CLIMS foreground adaptive thresholding (QA-CLIMS Sec. 4.3) — synth

| row | variant | settings | n | seed mIoU | published (VOC, for reference) | Δ | source | context FP % | missing: run |
|---|---|---|---|---|---|---|---|---|---|
| without FAT | qa-clims/no-fat |  | 2 | 61.0 ± 1.4 | 66.9 | -5.9 | QA-CLIMS FAT table | 11.0 |  |
| with FAT | qa-clims |  | 0 | — | 67.3 | — | QA-CLIMS FAT table | — | for s in 0 1; do bench run qa-clims --dataset synth --seed $s; done |

Notes:
- without FAT: without FAT
- with FAT: with FAT
"""

GOLDEN_FAT_CSV = """\
row,variant,settings,n,mean,std,published,delta,source,context_fp,command,note
without FAT,qa-clims/no-fat,,2,61.00,1.41,66.90,-5.90,"QA-CLIMS FAT table (Sec. 4.3) (VOC, for reference)",11.00,,without FAT
with FAT,qa-clims,,0,,,67.30,,"QA-CLIMS FAT table (Sec. 4.3) (VOC, for reference)",,for s in 0 1; do bench run qa-clims --dataset synth --seed $s; done,with FAT
"""

GOLDEN_LAMBDA_MD = """\
### SemPLeS refinement loss weight λ (SemPLeS Table 5) — synth

| row | variant | settings | n | seed mIoU | published (VOC, for reference) | Δ | source | missing: run |
|---|---|---|---|---|---|---|---|---|
| λ = 0 | semples | lambda_refine=0.0 | 0 | — | 67.6 | — | SemPLeS Table 5 | bench run semples --dataset synth --seed 0 --set lambda_refine=0.0 |
| λ = 0.01 | semples | lambda_refine=0.01 | 0 | — | 68.3 | — | SemPLeS Table 5 | bench run semples --dataset synth --seed 0 --set lambda_refine=0.01 |
| λ = 0.02 | semples | lambda_refine=0.02 | 0 | — | 68.4 | — | SemPLeS Table 5 | bench run semples --dataset synth --seed 0 --set lambda_refine=0.02 |
| λ = 0.05 | semples | lambda_refine=0.05 | 1 | 70.2 | 68.7 | +1.5 | SemPLeS Table 5 |  |
| λ = 0.1 | semples | lambda_refine=0.1 | 0 | — | 67.8 | — | SemPLeS Table 5 | bench run semples --dataset synth --seed 0 --set lambda_refine=0.1 |
"""


def test_golden_markdown_and_csv(store):
    df = compile_table("fat", ResultsStore(store).records(), dataset="synth", seeds=2,
                       strict=False)
    assert to_markdown(df) == GOLDEN_FAT_MD
    assert to_csv(df) == GOLDEN_FAT_CSV


def test_golden_curve_table_and_missing_commands(store):
    df = compile_table("loss-weight", ResultsStore(store).records(), strict=False)
    assert to_markdown(df) == GOLDEN_LAMBDA_MD
    assert df.loc[3, "n"] == 1 and df.loc[3, "mean"] == 70.25


def test_voc_has_no_reference_label_and_runs_dir_in_command(store):
    df = compile_table("fat", [], dataset="voc", runs_dir="/tmp/r", strict=False)
    assert "VOC, for reference" not in to_markdown(df)
    assert df.loc[1, "command"] == "bench run qa-clims --dataset voc --seed 0 --runs-dir /tmp/r"


def test_strict_matching_keeps_smoke_runs_apart(tmp_path):
    """With a registered variant, a cell is the fully resolved config: a smoke run with
    --set n_train=64 is not the default cell, and is exactly the cell of a report --set."""
    full = expected_params("cam", "synth", [])
    smoke = expected_params("cam", "synth", ["n_train=64"])
    assert full is not None and smoke["n_train"] == 64
    root = tmp_path / "runs"
    write_record(root, "a", variant="cam", seed_miou=40.0, config={"params": full})
    write_record(root, "b", variant="cam", seed_miou=30.0, config={"params": smoke})
    recs = ResultsStore(root).records()
    df = compile_table("seeds", recs)
    assert df.loc[0, "mean"] == 40.0 and df.loc[0, "n"] == 1
    df = compile_table("seeds", recs, sets=["n_train=64"])
    assert df.loc[0, "mean"] == 30.0
    assert df.loc[1, "command"] == "bench run clims --dataset synth --seed 0 --set n_train=64"


def test_plots_written(store, tmp_path):
    recs = ResultsStore(store).records()
    for name in ("loss-weight", "fat", "omega", "scheme"):
        out = plot(compile_table(name, recs, strict=False), tmp_path / f"{name}.png")
        assert out.stat().st_size > 1000
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_table_compiles_without_registered_variants():
    for name in table_names():
        df = compile_table(name, [], strict=False)
        assert len(df) == len(get_table(name).rows)
        assert (df["command"].str.startswith(("bench run", "for s in"))).all()


def test_missing_jobs_dedupe_and_reproduce_resumes(tmp_path, monkeypatch):
    """reproduce runs only what is missing; a second call runs nothing."""
    import harness.runner as runner
    from reports import tables
    from reports.reproduce import reproduce
    from reports.tables import Row, Table

    t = Table("tiny", "tiny", (Row("CAM", "cam", P.QACLIMS_T1_CAM["CAM"]),
                               Row("CAM again", "cam", P.QACLIMS_T1_CAM["CAM"]),
                               Row("QA", "qa-clims/does-not-exist", P.QACLIMS_FAT[True])))
    monkeypatch.setitem(tables.TABLES, "tiny", t)
    runs = tmp_path / "runs"
    calls = []

    def fake_run(cfg, runs_dir=None, **kw):
        calls.append((cfg.variant, cfg.seed))
        write_record(Path(runs_dir), f"r{len(calls)}", variant=cfg.variant, seed=cfg.seed,
                     seed_miou=50.0, hparams=cfg.hparams(), config=cfg.to_dict())
        return {}

    monkeypatch.setattr(runner, "run", fake_run)
    jobs = missing_jobs("tiny", "synth", 2, [])
    assert [(j.row.variant, j.seed) for j in jobs] == [
        ("cam", 0), ("cam", 1), ("qa-clims/does-not-exist", 0), ("qa-clims/does-not-exist", 1)]
    out = reproduce("tiny", "synth", seeds=2, runs_dir=runs, log=lambda m: None,
                    sets=["n_train=64"])
    assert calls == [("cam", 0), ("cam", 1)] and len(out["skipped"]) == 2
    out = reproduce("tiny", "synth", seeds=2, runs_dir=runs, log=lambda m: None,
                    sets=["n_train=64"])
    assert calls == [("cam", 0), ("cam", 1)] and out["ran"] == []
    df = compile_table("tiny", runs_dir=runs, seeds=2, sets=["n_train=64"])
    assert list(df["n"]) == [2, 2, 0]


def test_reproduce_with_two_workers_runs_each_cell_once(tmp_path, monkeypatch, cache_dir):
    """--workers 2: real tiny cam runs in two spawned processes, every seed recorded once,
    and a second call finds nothing missing."""
    from reports import tables
    from reports.reproduce import reproduce
    from reports.tables import Row, Table
    from tests.conftest import TINY

    monkeypatch.setitem(tables.TABLES, "tiny-cam", Table(
        "tiny-cam", "tiny", (Row("CAM", "cam", P.QACLIMS_T1_CAM["CAM"]),)))
    runs, lines = tmp_path / "runs", []
    own = tmp_path / "cache"  # its own stages: the session's stay as other tests expect them
    own.mkdir()
    (cache_dir / "synth").mkdir(exist_ok=True)
    (own / "synth").symlink_to((cache_dir / "synth").resolve(), target_is_directory=True)
    cache_dir = own
    out = reproduce("tiny-cam", "synth", seeds=3, sets=TINY, runs_dir=runs, cache_dir=cache_dir,
                    wandb_mode="disabled", workers=2, device="cpu", log=lines.append)
    assert len(out["ran"]) == 3 and out["failed"] == [] and "3 run(s) on 2 worker(s) (cpu)" in lines
    records = ResultsStore(runs).records()
    assert sorted(r["seed"] for r in records) == [0, 1, 2]
    assert {r["pid"] for r in records} != {__import__("os").getpid()}  # ran in the workers
    # each CPU worker takes its share of the cores, and says so in its record
    assert {r["torch_threads"] for r in records} == {max(1, (__import__("os").cpu_count() or 1) // 2)}
    again = reproduce("tiny-cam", "synth", seeds=3, sets=TINY, runs_dir=runs, cache_dir=cache_dir,
                      workers=2, device="cpu", log=lambda m: None)
    assert again["ran"] == []
    df = compile_table("tiny-cam", runs_dir=runs, seeds=3, sets=TINY)
    assert list(df["n"]) == [3]


# --- every published value, re-read from the paper text -------------------------------

def _paper(name: str) -> str:
    if PAPERS is None:
        pytest.skip("shared/papers not found beside the repository")
    return (PAPERS / name).read_text()


def _block(text: str, start: str, n_lines: int) -> list[str]:
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(start))
    return lines[i + 1:i + 1 + n_lines]


def _nums(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"(?<![\w.])\d+\.\d+|(?<![\w.])\d+(?![\w.])", line)]


def test_semples_values_match_paper():
    text = _paper("000_9987135e1467e097.txt")
    t1 = _block(text, "Table 1: Quantitative comparisons of CAMs", 10)
    row = {line.split()[0]: _nums(line)[-2:] for line in t1 if line.strip()}
    assert P.SEMPLES_T1_SEED["CLIMS"].value == row["CLIMS"][0] == 57.5
    assert P.SEMPLES_T1_SEED["SemPLeS"].value == row["SemPLeS"][0] == 68.7
    t4 = [float(x) for x in _block(text, "Table 4: Quantitative ablation", 6)[1:]]
    assert [p.value for p in P.SEMPLES_T4.values()] == t4
    lam, miou = _block(text, "Table 5: Loss weight analysis.", 2)
    assert {k: v.value for k, v in P.SEMPLES_T5.items()} == dict(zip(
        _nums(lam), _nums(miou), strict=True))
    t6 = [_nums(line)[-1] for line in _block(text, "Table 6: Learning scheme variants", 5)[1:]]
    assert [p.value for p in P.SEMPLES_T6.values()] == t6
    rounds = [_nums(line)[0] for line in _block(text, "Table 6: Learning scheme variants", 5)[2:]]
    assert rounds == [1, 2, 3]
    assert all(p.value is None for k, p in P.SEMPLES_T1_SEED.items() if k in ("CAM", "QA-CLIMS"))


def test_qa_clims_values_match_paper():
    text = _paper("001_47fd598f31b567ee.txt")
    t1 = _block(text, "Table 1. Comparison of the quality of generated CAMs", 10)
    row = {line.split()[0]: _nums(line)[-2:] for line in t1 if line.strip()}
    assert P.QACLIMS_T1_CAM["CAM"].value == row["IRN"][0] == 48.3
    assert P.QACLIMS_T1_CAM["CLIMS"].value == row["CLIMS"][0] == 56.6
    assert P.QACLIMS_T1_CAM["QA-CLIMS"].value == row["QA-CLIMS"][0] == 67.3
    t4 = [_nums(line)[-1] for line in _block(text, "Table 4. Compare the quality of initial", 5)[1:]]
    assert [p.value for p in P.QACLIMS_T4.values()] == t4
    t5 = [float(x) for x in _block(text, "Table 5. Comparison of the quality of generated", 12)
          if re.fullmatch(r"\d+\.\d", x.strip())]
    assert [p.value for p in P.QACLIMS_T5.values()] == t5
    fat = _block(text, "FAT mIoU(%)", 2)
    assert "✗" in fat[0] and "✓" in fat[1]
    assert [P.QACLIMS_FAT[False].value, P.QACLIMS_FAT[True].value] == [
        _nums(fat[0])[-1], _nums(fat[1])[-1]]
    appendix_b = text[text.index("Appendix B Filter Ratio Selection"):
                      text.index("Appendix C")]
    assert "set to 0.1, with a value of 67.3" in appendix_b
    assert P.QACLIMS_OMEGA[0.1].value == 67.3
    assert all(p.value is None and p.note for w, p in P.QACLIMS_OMEGA.items() if w != 0.1)


def test_table_rows_use_contract_variant_names():
    variants = {r.variant for name in table_names() for r in get_table(name).rows}
    assert {"cam", "clims", "semples", "qa-clims", "semples/match-only", "qa-clims/no-fat",
            "qa-clims/q-fine-alias", "semples/alternate-r3"} <= variants
    assert set(table_names()) == {"ablation", "loss-weight", "scheme", "questions", "fat",
                                  "omega", "seeds"}
