# ruff: noqa: E501  (golden Markdown/CSV strings are as wide as the tables)
"""Reports: golden Markdown/CSV from a hand-written results store, missing-cell commands,
published values re-read from the papers, plots, and a resumable `reproduce` (no training:
the runner is faked)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest

from harness.run_options import RunOptions
from harness.store import ResultsStore
from methods import papers
from methods.papers import Published
from reports import get_table, table_names
from reports.compile import compile_table, expected_params
from reports.render import plot, to_csv, to_markdown
from reports.reproduce import missing_jobs
from reports.selection import CellSelection

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

| row | variant | settings | n | seed mIoU | Δ vs ref [95% CI] | published (VOC, for reference) | Δ | source | context FP % | FP Δ vs ref [95% CI] | threshold | split | missing: run |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| without FAT | qa-clims/no-fat |  | 2 | 61.0 ± 1.4 | ref | 66.9 | -5.9 | QA-CLIMS FAT table | 11.0 | ref | best t | — |  |
| with FAT | qa-clims |  | 0 | — | — | 67.3 | — | QA-CLIMS FAT table | — | — | best t |  | for s in 0 1; do bench run qa-clims --dataset synth --seed $s; done |

- Δ vs ref = this row − reference row (`without FAT`), paired by (seed, teacher_seed) over the pairs both rows measured: mean [95 % CI, Student t over the paired differences] n=pairs.
- Smallest effect worth claiming: no-op noise not measured yet (reports/protocol.py), so no Δ is marked a claim; † = CI excludes 0.
- seed mIoU: at the best t on the eval split's own GT, which peeks (--threshold best); mean ± std over all (seed, teacher_seed) pairs of a cell.
- context FP %: false activation on the co-occurring context at 60 % object recall, averaged over the classes that reach it (the others: dead classes).

Notes:
- without FAT: without FAT
- with FAT: with FAT
"""

GOLDEN_FAT_CSV = """\
row,variant,settings,n,mean,std,published,delta,source,context_fp,command,note,reference,ref_n,ref_delta,ref_low,ref_high,ref_mark,ref_pairs,fp_ref_n,fp_ref_delta,fp_ref_low,fp_ref_high,fp_ref_mark,context_fp_negative,dead_classes,threshold,split
without FAT,qa-clims/no-fat,,2,61.00,1.41,66.90,-5.90,"QA-CLIMS FAT table (Sec. 4.3) (VOC, for reference)",11.00,,without FAT,without FAT,0,,,,,,0,,,,,,,best t,—
with FAT,qa-clims,,0,,,67.30,,"QA-CLIMS FAT table (Sec. 4.3) (VOC, for reference)",,for s in 0 1; do bench run qa-clims --dataset synth --seed $s; done,with FAT,without FAT,0,,,,,,0,,,,,,,best t,
"""

GOLDEN_LAMBDA_MD = """\
### SemPLeS refinement loss weight λ (SemPLeS Table 5) — synth

| row | variant | settings | n | seed mIoU | Δ vs ref [95% CI] | published (VOC, for reference) | Δ | source | threshold | split | missing: run |
|---|---|---|---|---|---|---|---|---|---|---|---|
| λ = 0 | semples | lambda_refine=0.0 | 0 | — | ref | 67.6 | — | SemPLeS Table 5 | best t |  | bench run semples --dataset synth --seed 0 --set lambda_refine=0.0 |
| λ = 0.01 | semples | lambda_refine=0.01 | 0 | — | — | 68.3 | — | SemPLeS Table 5 | best t |  | bench run semples --dataset synth --seed 0 --set lambda_refine=0.01 |
| λ = 0.02 | semples | lambda_refine=0.02 | 0 | — | — | 68.4 | — | SemPLeS Table 5 | best t |  | bench run semples --dataset synth --seed 0 --set lambda_refine=0.02 |
| λ = 0.05 | semples | lambda_refine=0.05 | 1 | 70.2 | — | 68.7 | +1.5 | SemPLeS Table 5 | best t | — |  |
| λ = 0.1 | semples | lambda_refine=0.1 | 0 | — | — | 67.8 | — | SemPLeS Table 5 | best t |  | bench run semples --dataset synth --seed 0 --set lambda_refine=0.1 |

- Δ vs ref = this row − reference row (`λ = 0`), paired by (seed, teacher_seed) over the pairs both rows measured: mean [95 % CI, Student t over the paired differences] n=pairs.
- Smallest effect worth claiming: no-op noise not measured yet (reports/protocol.py), so no Δ is marked a claim; † = CI excludes 0.
- seed mIoU: at the best t on the eval split's own GT, which peeks (--threshold best); mean ± std over all (seed, teacher_seed) pairs of a cell.
"""


@pytest.fixture(autouse=True)
def noise_not_measured(monkeypatch):
    """Goldens print the "not measured yet" line whatever reports/protocol.py holds."""
    from reports import protocol

    monkeypatch.setattr(protocol, "NOOP_NOISE_MIOU", None)
    monkeypatch.setattr(protocol, "NOOP_NOISE_CONTEXT_FP", None)


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

    cam, qa = Published(48.3, "QA-CLIMS Table 1"), Published(67.3, "QA-CLIMS FAT table")
    t = Table("tiny", "tiny", (Row("CAM", "cam", cam), Row("CAM again", "cam", cam),
                               Row("QA", "qa-clims/does-not-exist", qa)),
              reference="CAM")
    monkeypatch.setitem(tables.TABLES, "tiny", t)
    runs = tmp_path / "runs"
    calls = []

    def fake_run(cfg, runs_dir=None, **kw):
        calls.append((cfg.variant, cfg.seed))
        write_record(Path(runs_dir), f"r{len(calls)}-t{cfg.params.teacher_seed}", variant=cfg.variant, seed=cfg.seed,
                     seed_miou=50.0, hparams=cfg.hparams(), config=cfg.to_dict())
        return {}

    monkeypatch.setattr(runner, "run", fake_run)
    jobs = missing_jobs("tiny", CellSelection("synth", 2), [])
    assert [(j.row.variant, j.seed) for j in jobs] == [
        ("cam", 0), ("cam", 1), ("qa-clims/does-not-exist", 0), ("qa-clims/does-not-exist", 1)]
    out = reproduce("tiny", CellSelection("synth", 2, sets=("n_train=64",)),
                    options=RunOptions(runs_dir=runs), log=lambda m: None)
    assert calls == [("cam", 0), ("cam", 1)] and len(out["skipped"]) == 2
    out = reproduce("tiny", CellSelection("synth", 2, sets=("n_train=64",)),
                    options=RunOptions(runs_dir=runs), log=lambda m: None)
    assert calls == [("cam", 0), ("cam", 1)] and out["ran"] == []
    df = compile_table("tiny", runs_dir=runs, seeds=2, sets=["n_train=64"])
    assert list(df["n"]) == [2, 2, 0]
    # a second teacher: seeds × teacher seeds, only the teacher-1 runs are new
    calls.clear()
    reproduce("tiny", CellSelection("synth", 2, teacher_seeds=2, sets=("n_train=64",)),
              options=RunOptions(runs_dir=runs), log=lambda m: None)
    assert calls == [("cam", 0), ("cam", 1)]
    assert sorted(r.params()["teacher_seed"] for r in ResultsStore(runs).records()) \
        == [0, 0, 1, 1]
    df = compile_table("tiny", runs_dir=runs, seeds=2, teacher_seeds=2, sets=["n_train=64"])
    assert list(df["n"]) == [4, 4, 0] and df.loc[1, "ref_n"] == 4


@pytest.mark.slow  # two worker processes train the cells
def test_reproduce_with_two_workers_runs_each_cell_once(tmp_path, monkeypatch, cache_dir):
    """--workers 2: real tiny cam runs in two spawned processes, every seed recorded once,
    and a second call finds nothing missing."""
    from reports import tables
    from reports.reproduce import reproduce
    from reports.tables import Row, Table
    from tests.conftest import TINY

    monkeypatch.setitem(tables.TABLES, "tiny-cam", Table(
        "tiny-cam", "tiny", (Row("CAM", "cam", Published(48.3, "QA-CLIMS Table 1")),)))
    runs, lines = tmp_path / "runs", []
    own = tmp_path / "cache"  # its own stages: the session's stay as other tests expect them
    own.mkdir()
    (cache_dir / "synth").mkdir(exist_ok=True)
    (own / "synth").symlink_to((cache_dir / "synth").resolve(), target_is_directory=True)
    cache_dir = own
    out = reproduce("tiny-cam", CellSelection("synth", 3, sets=TINY),
                    options=RunOptions(runs_dir=runs, cache_dir=cache_dir, wandb_mode="disabled"), workers=2, device="cpu", log=lines.append)
    assert len(out["ran"]) == 3 and out["failed"] == [] and "3 run(s) on 2 worker(s) (cpu)" in lines
    records = ResultsStore(runs).records()
    assert sorted(r.seed for r in records) == [0, 1, 2]
    assert {r.metric("pid") for r in records} != {__import__("os").getpid()}  # ran in the workers
    # each CPU worker takes its share of the cores, and says so in its record
    assert {r.metric("torch_threads") for r in records} == {max(1, (__import__("os").cpu_count() or 1) // 2)}
    again = reproduce("tiny-cam", CellSelection("synth", 3, sets=TINY),
                      options=RunOptions(runs_dir=runs, cache_dir=cache_dir), workers=2, device="cpu", log=lambda m: None)
    assert again["ran"] == []
    df = compile_table("tiny-cam", runs_dir=runs, seeds=3, sets=TINY)
    assert list(df["n"]) == [3]


# --- paired statistics, teacher_seed axis, controls, provenance, threshold rules -----

T_975_DF2 = 4.302652729911275  # Student t, 0.975 quantile, 2 degrees of freedom (tables)
PROV = {"split": "eval", "n_images": 300, "gt_source": "synth masks", "scales": [1.0],
        "flips": False, "crf": False, "class_names": "voc", "clip_arch": "tiny-clip",
        "random_weights": False, "clip_weights_sha256": "a" * 64, "cam_checkpoint_sha256": "c" * 64,
        "threshold_rule": {"seed_miou": "best of 0.05…0.95 on the eval masks (peeks)",
                           "seed_miou_heldout": "best of 0.05…0.95 on 'heldout'"}}


def fat_record(root: Path, variant: str, seed: int, miou: float, teacher: int = 0, **fields):
    name = f"{variant.replace('/', '-')}-{seed}-{teacher}-{len(list(root.glob('*'))) if root.exists() else 0}"
    write_record(root, name, variant=variant, seed=seed, seed_miou=miou,
                 config={"params": {"teacher_seed": teacher}}, **fields)


def test_t_quantile_matches_tabulated_values():
    from reports.stats import t_quantile

    for df, t in [(1, 12.706204736174698), (2, T_975_DF2), (4, 2.7764451051977987),
                  (9, 2.2621571627409915), (30, 2.0422724563012373)]:
        assert t_quantile(0.975, df) == pytest.approx(t, rel=1e-9)
    assert t_quantile(0.95, 1) == pytest.approx(6.313751514675043, rel=1e-9)


def test_paired_delta_and_ci_equal_hand_computation(tmp_path):
    """Diffs [1, 2, 3] (with FAT − without, per seed) → mean 2, sd 1, CI 2 ± t(0.975, 2)/√3;
    an unpaired record (seed 3 of one row only) is left out of the pairs."""
    root = tmp_path / "runs"
    for seed, (ref, new) in enumerate([(60.0, 61.0), (64.0, 66.0), (58.0, 61.0)]):
        fat_record(root, "qa-clims/no-fat", seed, ref, context_fp=10.0 + seed)
        fat_record(root, "qa-clims", seed, new, context_fp=[9.0, 7.0, 8.0][seed])
    fat_record(root, "qa-clims", 3, 90.0)
    df = compile_table("fat", ResultsStore(root).records(), seeds=3, strict=False)
    row = df.iloc[1]
    half = T_975_DF2 * 1.0 / 3 ** 0.5
    assert row["ref_n"] == 3 and row["ref_pairs"] == "0/0 1/0 2/0" and row["n"] == 4
    assert row["ref_delta"] == pytest.approx(2.0)
    assert (row["ref_low"], row["ref_high"]) == pytest.approx((2 - half, 2 + half))
    assert row["ref_mark"] == ""  # CI [-0.48, 4.48] contains 0
    # context_fp diffs [-1, -4, -4]: mean -3, sd √3, CI -3 ± t·√3/√3 = -3 ± 4.30 → contains 0
    assert row["fp_ref_delta"] == pytest.approx(-3.0)
    assert row["fp_ref_high"] == pytest.approx(-3.0 + T_975_DF2)
    md = to_markdown(df)
    assert f"+2.0 [{2 - half:+.1f}, {2 + half:+.1f}] n=3 |" in md
    assert "pairs (seed/teacher_seed) of every Δ: 0/0 1/0 2/0." in md
    from reports.render import to_latex

    tex = to_latex(df)
    assert "paired by (seed, teacher\\_seed)" in tex and f"+2.0 [{2 - half:+.1f}, {2 + half:+.1f}] n=3" in tex


def test_claim_needs_ci_off_zero_and_effect_above_noise(tmp_path, monkeypatch):
    from reports import protocol

    root = tmp_path / "runs"
    for seed, d in enumerate([1.9, 2.0, 2.1]):  # mean 2, sd 0.1: CI 2 ± 0.25, off zero
        fat_record(root, "qa-clims/no-fat", seed, 60.0)
        fat_record(root, "qa-clims", seed, 60.0 + d)
    recs = ResultsStore(root).records()
    monkeypatch.setattr(protocol, "NOOP_NOISE_MIOU", 1.5)
    assert compile_table("fat", recs, strict=False).loc[1, "ref_mark"] == "claim"
    monkeypatch.setattr(protocol, "NOOP_NOISE_MIOU", 2.5)  # real, but within the no-op noise
    df = compile_table("fat", recs, strict=False)
    assert df.loc[1, "ref_mark"] == "ci" and "+2.0 [+1.8, +2.2] n=3 †" in to_markdown(df)
    monkeypatch.setattr(protocol, "NOOP_NOISE_CONTEXT_FP", 1.0)
    md = to_markdown(compile_table("fat", recs, strict=False))
    assert "Smallest effect worth claiming (measured no-op noise): 2.5 mIoU points, 1 " in md


def test_teacher_seed_is_a_second_seed_axis(tmp_path):
    """3 seeds × 2 teacher seeds = 6 pairs per cell; a cell missing teacher seed 1 prints the
    command with --set teacher_seed=1, and reproduce plans exactly the missing pairs."""
    root = tmp_path / "runs"
    for seed in range(3):
        for teacher in range(2):
            fat_record(root, "qa-clims/no-fat", seed, 60.0 + seed + teacher, teacher)
            if teacher == 0:
                fat_record(root, "qa-clims", seed, 62.0 + seed, teacher)
    recs = ResultsStore(root).records()
    df = compile_table("fat", recs, seeds=3, teacher_seeds=2, strict=False)
    assert list(df["n"]) == [6, 3]
    assert df.loc[0, "mean"] == pytest.approx(61.5)  # over all six pairs
    assert df.loc[1, "ref_n"] == 3 and df.loc[1, "ref_delta"] == pytest.approx(2.0)
    assert df.loc[1, "command"] == ("for s in 0 1 2; do bench run qa-clims --dataset synth "
                                    "--seed $s --set teacher_seed=1; done")
    jobs = missing_jobs("fat", CellSelection("synth", 3, teacher_seeds=2), recs)
    assert [(j.row.variant, j.seed, j.teacher_seed) for j in jobs] == [
        ("qa-clims", 0, 1), ("qa-clims", 1, 1), ("qa-clims", 2, 1)]
    assert jobs[0].command.endswith("--seed 0 --set teacher_seed=1")
    none = compile_table("fat", [], seeds=2, teacher_seeds=2, strict=False)
    assert none.loc[0, "command"] == ("for t in 0 1; do for s in 0 1; do bench run qa-clims/no-fat"
                                      " --dataset synth --seed $s --set teacher_seed=$t; done; done")


def test_seed_lists_count_only_their_seeds(tmp_path):
    """`--seeds 10-11 --teacher-seeds 2`: held-out seeds and teacher, nothing else counted;
    a count keeps counting every pair in the store."""
    from harness.errors import BenchError
    from reports.compile import parse_seeds

    assert parse_seeds("5") == 5 and parse_seeds("10-12") == [10, 11, 12] and parse_seeds("2-2") == [2]
    assert parse_seeds("3,7, 9-10") == [3, 7, 9, 10]
    for bad in ("0", "x", "5-", "-1", ""):
        with pytest.raises(BenchError, match="--seeds"):
            parse_seeds(bad)
    root = tmp_path / "runs"
    fat_record(root, "qa-clims/no-fat", 0, 60.0)
    fat_record(root, "qa-clims/no-fat", 10, 70.0, 2)
    fat_record(root, "qa-clims", 10, 73.0, 2)
    recs = ResultsStore(root).records()
    held = compile_table("fat", recs, strict=False, seeds=[10, 11], teacher_seeds=[2])
    assert list(held["n"]) == [1, 1] and held.loc[0, "mean"] == 70.0
    assert held.loc[1, "ref_delta"] == 3.0 and held.loc[1, "ref_pairs"] == "10/2"
    assert held.loc[1, "command"] == ("bench run qa-clims --dataset synth --seed 11 "
                                      "--set teacher_seed=2")
    assert compile_table("fat", recs, strict=False, seeds=1).loc[0, "n"] == 2
    jobs = missing_jobs("fat", CellSelection("synth", [10, 11], teacher_seeds=[2]), recs)
    assert [(j.row.variant, j.seed, j.teacher_seed) for j in jobs] == [
        ("qa-clims/no-fat", 11, 2), ("qa-clims", 11, 2)]


@pytest.mark.slow  # `bench reproduce` in a subprocess
def test_reproduce_cli_dry_run_with_held_out_seeds(tmp_path):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "cli", "reproduce", "fat", "--dry-run", "--seeds", "10-11",
           "--teacher-seeds", "2-2", "--runs-dir", str(tmp_path / "runs"), "--format", "csv"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "fat: 4 missing run(s)" in proc.stderr  # 2 rows × seeds 10, 11 × teacher seed 2
    assert "would run: bench run qa-clims --dataset synth --seed 11 --set teacher_seed=2" in proc.stderr
    proc = subprocess.run([*cmd[:7], "10-x"], capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and "--seeds '10-x'" in lines[0], proc.stderr


def test_strict_cell_keeps_every_teacher_seed(tmp_path):
    """Strict matching compares every resolved setting but teacher_seed, which is an axis;
    `--set teacher_seed=1` selects that teacher only."""
    full = expected_params("cam", "synth", [])
    root = tmp_path / "runs"
    for teacher in (0, 1):
        write_record(root, f"c{teacher}", variant="cam", seed_miou=40.0 + teacher,
                     config={"params": {**full, "teacher_seed": teacher}})
    recs = ResultsStore(root).records()
    assert compile_table("seeds", recs, teacher_seeds=2).loc[0, "n"] == 2
    only = compile_table("seeds", recs, sets=["teacher_seed=1"])
    assert only.loc[0, "n"] == 1 and only.loc[0, "mean"] == 41.0


def test_controls_oracle_row_negative_control_and_dead_classes(tmp_path):
    root = tmp_path / "runs"
    for seed in range(2):
        fat_record(root, "cam", seed, 40.0 + seed, context_fp=14.0, context_fp_negative=1.0 + seed,
                   oracle_seed_miou=80.0 + 2 * seed, oracle_context_fp=0.0, dead_classes=[])
        fat_record(root, "clims", seed, 41.0, context_fp=20.0, context_fp_negative=2.0,
                   dead_classes=["bird", "cow"] if seed == 0 else ["bird"])
    df = compile_table("seeds", ResultsStore(root).records(), seeds=2, strict=False)
    cam, clims, oracle = (df[df["row"] == r].iloc[0] for r in
                          ("CAM", "CLIMS", "oracle (cam, co-occurring context zeroed)"))
    assert oracle["mean"] == 81.0 and oracle["context_fp"] == 0.0 and oracle["n"] == 2
    assert oracle["ref_delta"] == pytest.approx(40.5) and oracle["fp_ref_delta"] == -14.0
    assert cam["context_fp_negative"] == 1.5 and cam["dead_classes"] == "0"
    assert clims["dead_classes"] == "2 (bird×2, cow)"
    assert clims["fp_ref_delta"] == pytest.approx(6.0)
    md = to_markdown(df)
    assert "| neg. control FP % | dead classes |" in md
    assert math.isnan(oracle["context_fp_negative"])
    # at --threshold fixed the oracle (best t only) is still paired with cam's best t
    recs = [dataclasses.replace(rec, seed_miou_fixed=rec.seed_miou - 10)
            for rec in ResultsStore(root).records()]
    fixed = compile_table("seeds", recs, seeds=2, strict=False, threshold="fixed")
    assert fixed.iloc[-1]["ref_delta"] == pytest.approx(40.5) and fixed.iloc[0]["mean"] == 30.5
    # an oracle cell is read from cam's runs: reproduce never runs it on its own
    jobs = {j.row.variant for j in missing_jobs("seeds", CellSelection("synth", 2),
                                                 ResultsStore(root).records())}
    assert {"semples", "qa-clims"} <= jobs and not jobs & {"cam", "clims"}  # clip-es, plugins: more


def test_threshold_rule_picks_the_seed_miou_and_is_printed(tmp_path):
    from harness.errors import BenchError

    root = tmp_path / "runs"
    for seed in range(2):
        fat_record(root, "qa-clims/no-fat", seed, 60.0, seed_miou_fixed=50.0 + seed,
                   fixed_threshold=0.15, seed_miou_heldout=55.0, threshold_heldout=0.3 + 0.1 * seed,
                   best_threshold=0.25, provenance=PROV)
    fat_record(root, "qa-clims", 0, 61.0, seed_miou_fixed=52.0, fixed_threshold=0.15,
               provenance=PROV)
    recs = ResultsStore(root).records()
    fixed = compile_table("fat", recs, strict=False, threshold="fixed")
    assert fixed.loc[0, "mean"] == 50.5 and fixed.loc[0, "threshold"] == "fixed t (0.15)"
    assert fixed.loc[1, "ref_delta"] == 2.0 and fixed.loc[0, "split"] == "eval (300)"
    held = compile_table("fat", recs, strict=False, threshold="heldout")
    assert held.loc[0, "mean"] == 55.0 and held.loc[0, "threshold"] == "held-out t (0.3–0.4)"
    assert held.loc[1, "n"] == 0  # no held-out score recorded: that cell is missing
    assert held.loc[1, "command"] == ("bench run qa-clims --dataset synth --seed 0 "
                                      "--threshold-split heldout")
    jobs = missing_jobs("fat", CellSelection("synth", 1, threshold="heldout"), recs)
    assert [(j.row.variant, j.threshold_split) for j in jobs] == [("qa-clims", "heldout")]
    assert jobs[0].command.endswith("--seed 0 --threshold-split heldout")
    assert "(--threshold heldout; the runs record: best of 0.05…0.95 on 'heldout')" in to_markdown(held)
    assert compile_table("fat", recs, strict=False).loc[0, "threshold"] == "best t (0.25)"
    with pytest.raises(BenchError, match="--threshold must be one of best, fixed, heldout"):
        compile_table("fat", recs, strict=False, threshold="oracle")


def test_provenance_mismatch_is_refused_or_flagged(tmp_path):
    from harness.errors import BenchError

    root = tmp_path / "runs"
    fat_record(root, "qa-clims/no-fat", 0, 60.0, provenance=PROV)
    fat_record(root, "qa-clims", 0, 61.0, provenance={**PROV, "split": "train", "crf": True})
    # another teacher seed may have another teacher; one teacher seed, one teacher
    fat_record(root, "qa-clims/no-fat", 0, 60.0, 1, provenance={**PROV, "clip_weights_sha256": "b" * 64})
    recs = ResultsStore(root).records()
    with pytest.raises(BenchError) as err:
        compile_table("fat", recs, strict=False, teacher_seeds=2)
    msg = str(err.value)
    assert "\n" not in msg and "split: eval (without FAT) vs train (with FAT)" in msg
    assert "crf: False (without FAT) vs True (with FAT)" in msg
    assert "clip_weights_sha256" not in msg and "--mixed-provenance" in msg
    df = compile_table("fat", recs, strict=False, teacher_seeds=2, mixed_provenance=True)
    assert "- FLAGGED: rows with different provenance in one column — split" in to_markdown(df)
    # what a run could not know (None: cam has no teacher, eval of foreign CAMs no scales)
    # never counts as a difference
    unknown = tmp_path / "unknown"
    fat_record(unknown, "qa-clims/no-fat", 0, 60.0, provenance=PROV)
    fat_record(unknown, "qa-clims", 0, 61.0,
               provenance={**PROV, "clip_weights_sha256": None, "scales": None})
    assert compile_table("fat", ResultsStore(unknown).records(), strict=False).loc[1, "n"] == 1
    # the threshold rule of the shown seed mIoU (here another sweep grid) must agree too
    grid = tmp_path / "grid"
    fat_record(grid, "qa-clims/no-fat", 0, 60.0, provenance=PROV)
    fat_record(grid, "qa-clims", 0, 61.0, provenance={**PROV, "threshold_rule": {
        "seed_miou": "best of 0.1…0.9 on the eval masks (peeks)"}})
    with pytest.raises(BenchError, match="threshold_rule of seed_miou: best of 0.05…0.95 on the "
                       "eval masks \\(peeks\\) \\(without FAT\\) vs best of 0.1…0.9"):
        compile_table("fat", ResultsStore(grid).records(), strict=False)
    # rows on a folder whose files changed between them (relabelled) are other data
    folder = tmp_path / "folder"
    fat_record(folder, "qa-clims/no-fat", 0, 60.0, provenance={**PROV, "data_fingerprint": "1" * 16})
    fat_record(folder, "qa-clims", 0, 61.0, provenance={**PROV, "data_fingerprint": "2" * 16})
    with pytest.raises(BenchError, match="data_fingerprint: 111111111111"):
        compile_table("fat", ResultsStore(folder).records(), strict=False)
    fat_record(root, "qa-clims/no-fat", 1, 60.0, provenance={**PROV, "clip_weights_sha256": "d" * 64})
    fat_record(root, "qa-clims", 0, 61.0, provenance=PROV)  # newer seed-0 record, same protocol
    with pytest.raises(BenchError, match=r"clip_weights_sha256 \(teacher_seed 0\): aaaaaaaaaaaa "
                       r"\(without FAT, with FAT\) vs dddddddddddd \(without FAT\)"):
        compile_table("fat", ResultsStore(root).records(), strict=False, seeds=2)


@pytest.mark.slow  # `bench report` in a subprocess
def test_report_cli_refuses_mixed_provenance_in_one_line(tmp_path):
    import subprocess
    import sys

    root = tmp_path / "runs"
    fat_record(root, "qa-clims/no-fat", 0, 60.0, provenance=PROV)
    fat_record(root, "qa-clims", 0, 61.0, provenance={**PROV, "gt_source": "SegmentationClassAug"})
    cmd = [sys.executable, "-m", "cli", "report", "-t", "fat", "--runs-dir", str(root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and "gt_source" in lines[0], proc.stderr
    proc = subprocess.run([*cmd, "--mixed-provenance", "--format", "csv"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("row,variant"), proc.stderr


@pytest.mark.slow  # `bench` in subprocesses
def test_per_class_table_and_precision_recall_plot(tmp_path):
    import os
    import subprocess
    import sys

    from harness.errors import BenchError
    from reports.per_class import as_record, per_class_frame, select_runs
    from reports.per_class import to_markdown as per_class_md

    root = tmp_path / "runs"
    stats = [{"background": {"iou": 80.0, "precision": 90.0, "recall": 88.0, "fp": 10.0, "fn": 12.0},
              "boat": {"iou": 40.0, "precision": 50.0, "recall": 70.0, "fp": 45.0, "fn": 15.0}},
             {"background": {"iou": 82.0, "precision": 92.0, "recall": 86.0, "fp": 8.0, "fn": 14.0},
              "boat": {"iou": 44.0, "precision": 60.0, "recall": 60.0, "fp": 30.0, "fn": 26.0}}]
    for seed in range(2):
        fat_record(root, "cam", seed, 40.0, per_class=stats[seed], background_leak=20.0 + 10 * seed,
                   run_id=f"20250101-cam-s{seed}", best_threshold=0.25)
    recs = ResultsStore(root).records()
    one = per_class_frame(select_runs(recs, ["20250101-cam-s1"]))
    assert one.set_index("class").loc["boat", "precision"] == 60.0
    both = per_class_frame(select_runs(recs, variant="cam"))
    boat = both.set_index("class").loc["boat"]
    assert list(boat) == [42.0, 55.0, 65.0, 37.5, 20.5]
    assert both.attrs["background_leak"] == pytest.approx(25.0)
    md = per_class_md(both)
    assert "| boat | 42.0 | 55.0 | 65.0 | 37.5 | 20.5 |" in md and "background leak: 25.0 %" in md
    assert as_record(both)["per_class"]["boat"]["recall"] == 65.0
    assert as_record(both)["best_threshold"] is None and as_record(one)["best_threshold"] == 0.25
    # the CLI: the table on the terminal and the same PNG `bench eval --plot` writes
    png = tmp_path / "pr.png"
    proc = subprocess.run([sys.executable, "-m", "cli", "report", "--table", "per-class",
                           "--variant", "cam", "--runs-dir", str(root), "--plot", str(png)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "120"})
    assert proc.returncode == 0 and "background leak: 25.0 %" in proc.stdout, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    with pytest.raises(BenchError, match="2 runs start with it"):
        select_runs(recs, ["20250101-cam"])
    with pytest.raises(BenchError, match="--run RUN_ID"):
        select_runs(recs)
    write_record(root, "old", variant="cam", seed_miou=1.0, run_id="old-run")
    with pytest.raises(BenchError, match="old-run have no per-class precision/recall"):
        per_class_frame(select_runs(ResultsStore(root).records(), ["old-run"]))


def test_every_reference_row_exists():
    for name in table_names():
        table = get_table(name)
        assert table.reference and table.reference_of(table.rows[-1]) is not None, name
        for row in table.rows:
            assert table.reference_of(row) is not None, (name, row.label)
    ablation = get_table("ablation")
    refs = {r.label: ablation.reference_of(r).label for r in ablation.rows}
    assert refs["SemPLeS: all losses"] == "SemPLeS: L_match only"
    assert refs["QA-CLIMS: L_FRC + L_BRC + L_REG"] == refs["SemPLeS: L_match only"] == "CAM"


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


def _values(table: str, family: str = "") -> list[float | None]:
    """The published values of `table`'s rows in the families' papers, in table order."""
    return [r.published.value for r in papers.rows(table) if r.variant.split("/")[0].startswith(family)]


def _table1(source: str) -> dict[str, float | None]:
    return {r.label: r.published.value for r in papers.rows("seeds") if r.published.source == source}


def _table1_mask(source: str) -> dict[str, float | None]:
    return {r.label: r.mask.value for r in papers.rows("seeds")
            if r.published.source == source and r.mask is not None}


def test_semples_values_match_paper():
    text = _paper("000_9987135e1467e097.txt")
    t1 = _block(text, "Table 1: Quantitative comparisons of CAMs", 10)
    row = {line.split()[0]: _nums(line)[-2:] for line in t1 if line.strip()}
    assert _table1("SemPLeS Table 1") == {"CLIMS": row["CLIMS"][0], "SemPLeS": row["SemPLeS"][0],
                                          "CLIP-ES (SemPLeS)": row["CLIP-ES"][0]}
    assert row["CLIMS"][0] == 57.5 and row["SemPLeS"][0] == 68.7 and row["CLIP-ES"][0] == 58.6
    # the Mask column (pseudo masks), the row's last number
    assert _table1_mask("SemPLeS Table 1") == {"CLIMS": row["CLIMS"][1], "SemPLeS": row["SemPLeS"][1],
                                               "CLIP-ES (SemPLeS)": row["CLIP-ES"][1]}
    assert (row["CLIMS"][1], row["SemPLeS"][1], row["CLIP-ES"][1]) == (72.8, 78.4, 75.0)
    t4 = [float(x) for x in _block(text, "Table 4: Quantitative ablation", 6)[1:]]
    assert _values("ablation", "semples") == t4
    lam, miou = _block(text, "Table 5: Loss weight analysis.", 2)
    table5 = {r.hparams["lambda_refine"]: r.published.value for r in papers.rows("loss-weight")}
    assert table5 == dict(zip(_nums(lam), _nums(miou), strict=True))
    assert list(papers.grid("semples", "lambda_refine")) == _nums(lam)  # the sweep's grid
    t6 = [_nums(line)[-1] for line in _block(text, "Table 6: Learning scheme variants", 5)[1:]]
    assert _values("scheme") == t6
    rounds = [_nums(line)[0] for line in _block(text, "Table 6: Learning scheme variants", 5)[2:]]
    assert rounds == [1, 2, 3]


def test_qa_clims_values_match_paper():
    text = _paper("001_47fd598f31b567ee.txt")
    t1 = _block(text, "Table 1. Comparison of the quality of generated CAMs", 10)
    row = {line.split()[0]: _nums(line)[-2:] for line in t1 if line.strip()}
    assert _table1("QA-CLIMS Table 1") == {"CAM": row["IRN"][0], "CLIMS": row["CLIMS"][0],
                                           "QA-CLIMS": row["QA-CLIMS"][0]}
    assert (row["IRN"][0], row["CLIMS"][0], row["QA-CLIMS"][0]) == (48.3, 56.6, 67.3)
    assert _table1_mask("QA-CLIMS Table 1") == {"CAM": row["IRN"][1], "CLIMS": row["CLIMS"][1],
                                                "QA-CLIMS": row["QA-CLIMS"][1]}
    assert (row["IRN"][1], row["CLIMS"][1], row["QA-CLIMS"][1]) == (66.5, 70.5, 77.4)
    t4 = [_nums(line)[-1] for line in _block(text, "Table 4. Compare the quality of initial", 5)[1:]]
    assert _values("ablation", "qa-clims") == t4
    t5 = [float(x) for x in _block(text, "Table 5. Comparison of the quality of generated", 12)
          if re.fullmatch(r"\d+\.\d", x.strip())]
    assert _values("questions") == t5
    fat = _block(text, "FAT mIoU(%)", 2)
    assert "✗" in fat[0] and "✓" in fat[1]
    assert [r.label for r in papers.rows("fat")] == ["without FAT", "with FAT"]
    assert _values("fat") == [_nums(fat[0])[-1], _nums(fat[1])[-1]]
    appendix_b = text[text.index("Appendix B Filter Ratio Selection"):
                      text.index("Appendix C")]
    assert "set to 0.1, with a value of 67.3" in appendix_b
    omega = {r.hparams["omega"]: r.published for r in papers.rows("omega")}
    assert omega[0.1].value == 67.3 and tuple(omega) == papers.grid("qa-clims", "omega")
    assert all(p.value is None and p.note for w, p in omega.items() if w != 0.1)


def test_a_variant_name_registered_twice_is_refused():
    from harness.errors import BenchError
    from harness.registry import get_variant, register_variant
    from methods.semples.paper import PAPER

    before = get_variant("semples/match-only")
    with pytest.raises(BenchError, match="'semples/match-only' is registered twice"):
        @PAPER.variant("semples/match-only", rows=[papers.row("ablation", "again", 1.0, "x")])
        def again() -> dict:
            """A second match-only."""
            return {"lambda_refine": 0.0}
    with pytest.raises(BenchError, match="registered twice"):
        register_variant("qa-clims/no-fat")(lambda: {})
    assert get_variant("semples/match-only") is before  # the first one stays
    assert [r.label for r in papers.rows("ablation")].count("again") == 0


def test_table_rows_use_contract_variant_names():
    variants = {r.variant for name in table_names() for r in get_table(name).rows}
    assert {"cam", "clims", "semples", "qa-clims", "semples/match-only", "qa-clims/no-fat",
            "qa-clims/q-fine-alias", "semples/alternate-r3"} <= variants
    assert {"ablation", "loss-weight", "scheme", "questions", "fat", "omega", "seeds"} <= set(
        table_names())  # ⊆: a plugin's paper may add tables


def test_seeds_table_mask_column_paired_to_cam(tmp_path):
    """Runs with --masks carry mask_miou: the seeds table's Mask column is their mean, the
    published Mask value and Δ to it, and the paired Δ to CAM's masks (diffs 4, 6 → mean 5,
    sd √2, CI 5 ± t(0.975, 1)·√2/√2); a run without masks counts in n, not in Mask n."""
    root = tmp_path / "runs"
    for seed, (cam, qa) in enumerate([(50.0, 54.0), (52.0, 58.0)]):
        write_record(root, f"c{seed}", variant="cam", seed=seed, seed_miou=40.0, mask_miou=cam,
                     mask_context_fp=5.0)
        write_record(root, f"q{seed}", variant="qa-clims", seed=seed, seed_miou=45.0, mask_miou=qa)
    write_record(root, "q2", variant="qa-clims", seed=2, seed_miou=45.0)
    df = compile_table("seeds", ResultsStore(root).records(), seeds=3, strict=False)
    cam = df[df["row"] == "CAM"].iloc[0]
    qa = df[df["row"] == "QA-CLIMS"].iloc[0]
    assert (cam["mask_n"], cam["mask_mean"], cam["mask_published"]) == (2, 51.0, 66.5)
    assert cam["mask_context_fp"] == 5.0
    assert (qa["n"], qa["mask_n"], qa["mask_mean"], qa["mask_published"]) == (3, 2, 56.0, 77.4)
    assert qa["mask_delta"] == pytest.approx(56.0 - 77.4)
    t_975_df1 = 12.706204736174698
    assert qa["mask_ref_n"] == 2 and qa["mask_ref_delta"] == pytest.approx(5.0)
    assert (qa["mask_ref_low"], qa["mask_ref_high"]) == pytest.approx((5 - t_975_df1, 5 + t_975_df1))
    md = to_markdown(df)
    assert "| Mask n | Mask mIoU | Mask Δ vs ref [95% CI] | Mask published | Mask Δ |" in md
    assert f"| 2 | 56.0 ± 2.8 | +5.0 [{5 - t_975_df1:+.1f}, {5 + t_975_df1:+.1f}] n=2 | 77.4 | -21.4 |" in md
    assert "mask_n" not in compile_table("fat", [], strict=False).columns  # no Mask column there


def test_compare_two_rows_equals_hand_paired_delta(tmp_path, monkeypatch):
    """`--compare A B` is B − A over the pairs both rows have: L_FRC + L_BRC − L_FRC with
    diffs [1, 2, 3] (seed 3 of one row only is unpaired) → mean 2, CI 2 ± t(0.975, 2)/√3;
    context FP diffs [-2, -2, -2] → sd 0, a CI of zero width off zero, larger than the noise."""
    from reports import protocol
    from reports.compare import compare_rows, render_lines

    monkeypatch.setattr(protocol, "NOOP_NOISE_MIOU", 0.43)
    monkeypatch.setattr(protocol, "NOOP_NOISE_CONTEXT_FP", 0.09)
    root = tmp_path / "runs"
    for seed, (frc, both) in enumerate([(60.0, 61.0), (64.0, 66.0), (58.0, 61.0)]):
        fat_record(root, "qa-clims/frc", seed, frc, context_fp=10.0)
        fat_record(root, "qa-clims/frc-brc", seed, both, context_fp=8.0)
    fat_record(root, "qa-clims/frc-brc", 3, 90.0, context_fp=1.0)
    c = compare_rows("ablation", "L_FRC", "L_FRC + L_BRC", ResultsStore(root).records(),
                     CellSelection(seeds=4))
    half = T_975_DF2 / 3 ** 0.5
    assert c.first.variant == "qa-clims/frc" and c.second.variant == "qa-clims/frc-brc"
    assert c.seed_miou.pairs == ((0, 0), (1, 0), (2, 0)) and c.seed_miou.mean == pytest.approx(2)
    assert (c.seed_miou.low, c.seed_miou.high) == pytest.approx((2 - half, 2 + half))
    assert c.context_fp.mean == pytest.approx(-2) and c.context_fp.half_width == 0
    lines = render_lines(c)
    assert lines[1] == f"seed mIoU (best t): Δ +2.00 [{2 - half:+.2f}, {2 + half:+.2f}] n=3"
    assert lines[2] == "context FP %: Δ -2.00 [-2.00, -2.00] n=3 *"
    assert lines[3].startswith("gains in 3 of 3 pairs") and lines[3].endswith("2/0 +3.0")
    assert "(measured no-op noise): 0.43 mIoU points, 0.09 context-FP points" in lines[4]
    swapped = compare_rows("ablation", "qa-clims/frc-brc", "QA-CLIMS: L_FRC",
                           ResultsStore(root).records(), CellSelection(seeds=4))
    assert swapped.seed_miou.mean == pytest.approx(-2)


def test_compare_names_rows_by_label_variant_or_unique_part(tmp_path):
    from harness.errors import BenchError
    from reports.compare import find_row

    table = get_table("ablation")
    assert find_row(table, "SemPLeS: L_match only").variant == "semples/match-only"
    assert find_row(table, "L_BRC").label == "QA-CLIMS: L_BRC"
    assert find_row(table, "qa-clims/frc-brc").label == "QA-CLIMS: L_FRC + L_BRC"
    with pytest.raises(BenchError, match="names 3 rows"):
        find_row(table, "frc")
    with pytest.raises(BenchError, match="no row of ablation"):
        find_row(table, "nosuch")


def test_report_cli_compare(tmp_path):
    import subprocess
    import sys

    root = tmp_path / "runs"
    for seed, d in enumerate([1.0, 2.0]):
        fat_record(root, "semples/joint", seed, 50.0, context_fp=3.0)
        fat_record(root, "semples/alternate-r2", seed, 50.0 + d, context_fp=2.5)
    cmd = [sys.executable, "-m", "cli", "report", "-t", "scheme", "--runs-dir", str(root),
           "--seeds", "2", "--compare", "joint training", "semples/alternate-r2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "'alternate, 2 rounds' − 'joint training'" in proc.stdout
    assert f"Δ +1.50 [{1.5 - 12.706204736174698 * 0.5:+.2f}, " in proc.stdout
    proc = subprocess.run([*cmd[:-1], "joint"], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "same row" in lines[0], proc.stderr


def test_terminal_table_keeps_rows_whole_in_a_pipe(tmp_path, monkeypatch):
    """In a pipe rich assumes 80 columns and folds each cell; the report widens to the
    table's natural width, so each row is one line (and COLUMNS, when set, still wins)."""
    import io

    from rich.console import Console

    from reports.render import print_table

    root = tmp_path / "runs"
    for seed in range(3):
        fat_record(root, "qa-clims/no-fat", seed, 60.0 + seed, context_fp=10.0)
        fat_record(root, "qa-clims", seed, 61.5 + seed, context_fp=8.0)
    df = compile_table("fat", ResultsStore(root).records(), seeds=3, strict=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    out = io.StringIO()
    print_table(df, Console(file=out))
    rows = [line for line in out.getvalue().splitlines() if line.startswith("│")]
    assert len(rows) == len(df) and "+1.5 [+1.5, +1.5] n=3" in rows[1]
    monkeypatch.setenv("COLUMNS", "80")
    out = io.StringIO()
    print_table(df, Console(file=out))
    assert max(len(line) for line in out.getvalue().splitlines()[:8]) <= 80


def test_reproduce_with_masks_reruns_cells_measured_without_them(tmp_path):
    """A table measured without masks, asked again with --masks crf: every cell is missing
    until a run of that pipeline has a mask mIoU; an IRN run does not count for crf."""
    root = tmp_path / "runs"

    def masked(pipeline: str) -> dict:
        return {"config": {"params": {"teacher_seed": 0}, "masks": {"pipeline": pipeline}},
                "mask_miou": 50.0}

    for seed in range(2):
        fat_record(root, "qa-clims/no-fat", seed, 60.0)
        fat_record(root, "qa-clims", seed, 61.0)
    recs = ResultsStore(root).records()
    assert missing_jobs("fat", CellSelection("synth", 2), recs) == []
    assert len(missing_jobs("fat", CellSelection("synth", 2), recs, masks="crf")) == 4
    write_record(root, "crf0", variant="qa-clims", seed=0, seed_miou=61.0, **masked("crf"))
    write_record(root, "irn1", variant="qa-clims", seed=1, seed_miou=61.0, **masked("irn"))
    recs = ResultsStore(root).records()
    left = missing_jobs("fat", CellSelection("synth", 2), recs, masks="crf")
    assert [(j.row.variant, j.seed) for j in left] == [
        ("qa-clims/no-fat", 0), ("qa-clims/no-fat", 1), ("qa-clims", 1)]
    assert [(j.row.variant, j.seed) for j in missing_jobs("fat", CellSelection("synth", 2), recs, masks="irn")
            ] == [("qa-clims/no-fat", 0), ("qa-clims/no-fat", 1), ("qa-clims", 0)]
    assert missing_jobs("fat", CellSelection("synth", 2), recs, masks="none") == []


def test_local_reproduce_preflight_stops_bad_inputs_before_any_cell(tmp_path, monkeypatch):
    """A bad --mask-set or a missing VOC root: one BenchError before the first cell runs
    (before this, every cell ran and failed on its own)."""
    import harness.runner as runner
    from harness.errors import BenchError
    from reports import tables
    from reports.reproduce import reproduce
    from reports.tables import Row, Table

    cam = Published(48.3, "QA-CLIMS Table 1")
    monkeypatch.setitem(tables.TABLES, "tiny", Table("tiny", "tiny", (Row("CAM", "cam", cam),)))
    calls = []
    monkeypatch.setattr(runner, "run", lambda cfg, **kw: calls.append(cfg) or {})
    bad_masks = RunOptions(runs_dir=tmp_path / "runs", masks="crf", mask_sets=("no_such=1",))
    with pytest.raises(BenchError, match="no_such"):
        reproduce("tiny", CellSelection("synth", 2), options=bad_masks, log=lambda m: None)
    no_root = RunOptions(runs_dir=tmp_path / "runs", data_root=tmp_path / "missing")
    with pytest.raises(BenchError, match="preflight.*missing"):
        reproduce("tiny", CellSelection("voc", 2), options=no_root, log=lambda m: None)
    assert calls == []
