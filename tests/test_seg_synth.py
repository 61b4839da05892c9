"""The synth segmentation measurement's arithmetic (reports/seg_synth.py), by hand: the
plateau budget, Kendall τ-b, the addendum's verdict, and which record fills which cell."""

from __future__ import annotations

import math

import pytest

from reports import seg_synth as S
from reports.stats import PairedDelta


def test_plateau_budget_by_hand():
    """Blocks of 2: means 10, 8, 6, 5.9, 5.85. Block 3 (end 6): (10 − 6)/10 = 40 % ≥ 3 %;
    block 4: (8 − 5.9)/8 = 26 %; block 5 (end 10): (6 − 5.85)/6 = 2.5 % < 3 % → B = 10."""
    losses = [10, 10, 8, 8, 6, 6, 5.9, 5.9, 5.85, 5.85, 1, 1]
    assert S.block_means(losses, 2)[:5] == [10, 8, 6, 5.9, 5.85]
    assert S.plateau_budget(losses, block=2) == 10
    assert S.plateau_budget([10, 8, 6, 4, 2], block=1, cap=5) == 5  # never flat: the cap


def test_kendall_tau_b_by_hand():
    assert S.kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)  # 2 concordant, 1 not
    # a tie in the first: (0, 1) counts in its denominator only → 2 / √(3 · 2)
    assert S.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert S.kendall_tau([3, 2, 1], [1, 2, 3]) == -1


def _d(mean: float, half: float, n: int = 10) -> PairedDelta:
    return PairedDelta(tuple(range(n)), mean, 1.0, half)


def test_verdict_follows_the_addendum():
    assert S.verdict(_d(2, 1), _d(3, 1)) == "carries"
    assert S.verdict(_d(-2, 1), _d(-3, 1)) == "carries"
    assert S.verdict(_d(2, 1), _d(-3, 1)) == "does not carry (reversed)"
    assert S.verdict(_d(2, 1), _d(0.5, 1)).startswith("not shown to carry")
    assert S.verdict(_d(0.5, 1), _d(3, 1)).startswith("no mask ordering")
    assert S.verdict(_d(2, 1, n=1), _d(3, 1, n=1)) == "too few pairs"


def _rec(variant: str, seed: int, miou: float, teacher: int = 0, iterations: int = 400) -> dict:
    reads = {} if variant in ("cam", "segment/gt") else {"teacher": "synth-tiny-clip"}  # cam, FS: none
    return {"variant": variant, "seed": seed, "seg_miou": miou, "seed_miou": miou - 10, "teacher": reads,
            "finished_at": f"2026-12-06T{seed:02d}", "config": {"params": {"teacher_seed": teacher}},
            "provenance": {"segment": {"model": "deeplab-synth", "iterations": iterations}}}


def test_cells_spread_fs_over_teachers_and_keep_the_budget():
    recs = [_rec("segment/gt", 1, 80.0), _rec("semples", 1, 60.0, teacher=1), _rec("semples", 1, 50.0),
            _rec("semples", 2, 99.0, iterations=2000)]  # another budget: not a cell
    got = S.cells(recs, 400)
    assert set(got[S.FS]) == {(1, 0), (1, 1)} and set(got["semples"]) == {(1, 1), (1, 0)}
    m = S.Measurement(got, S.PAIRS)
    d = m.delta(S.FS, "semples", "seg_miou")  # pairs (1, 0): 80 − 50, (1, 1): 80 − 60
    assert d.n == 2 and d.mean == pytest.approx(25.0)
    assert m.rows() == [S.FS, "semples"]


def test_page_from_a_store_by_hand(tmp_path):
    """Two pairs (0/0, 1/0) of FS, cam and semples (FS's 2 runs also fill 0/1, 1/1):
    semples − cam seed Δ +5, +7: mean 6, sd √2, CI ± t(0.975, 1) · √2/√2 = ± 12.71, which
    includes 0 → 'no mask ordering'; FS − cam seg Δ 20, 22 → 21.00; FS ≥ every method."""
    import json

    recs = [_rec("segment/gt", 0, 90.0), _rec("segment/gt", 1, 92.0),  # FS: pairs (0|1, 0|1)
            _rec("cam", 0, 70.0), _rec("cam", 1, 70.0), _rec("semples", 0, 75.0), _rec("semples", 1, 77.0)]
    for i, r in enumerate(recs):
        (tmp_path / f"r{i}").mkdir()
        (tmp_path / f"r{i}" / "result.json").write_text(json.dumps(
            {**r, "status": "ok", "dataset": "synth", "wall_s": 60.0, "git_rev": "abc"}))
    (tmp_path / S.BUDGET_FILE).write_text(json.dumps({"budget": 400, "block": 50, "block_means": [1.0, 0.5],
                                                     "wall_s": 100.0}))
    page = S.page(tmp_path)
    assert "**Budget B = 400 iterations**" in page and "FS 4 (from 2 runs), cam 2, semples 2" in page
    ci = "+6.00 [-6.71, +18.71] (n 2)"
    assert f"| cam → semples | {ci} | {ci} | no mask ordering" in page
    assert "- FS − cam: +21.00 [+8.29, +33.71] (n 2): yes" in page and "**FS ≥ every method: yes.**" in page
    assert "seed mIoU vs seg_miou (2 methods: cam, semples): **1.00**" in page
    assert "| FS | 2 | 81.00 ± 1.41 | 91.00 ± 1.41 | +21.00 [+8.29, +33.71] (n 2) | - |" in page
    # 60 s per run of each row
    assert "one pair of the rows measured here (FS, cam, semples): about 3.0 min" in page


def test_report_writes_the_page_and_its_figure(tmp_path):
    """`report --out P.md` writes P.md linking P.png (seed mIoU against seg_miou), both whole
    (no temporary file left), the figure a real PNG of the size it is drawn at (6 × 4.5 in at
    120 dpi)."""
    from PIL import Image

    from benchmarks.seg_synth import main

    test_page_from_a_store_by_hand(tmp_path)  # the same hand-made store
    out = tmp_path / "docs" / "seg.md"
    out.parent.mkdir()
    assert main(["report", "--runs-dir", str(tmp_path), "--out", str(out)]) == 0
    assert "![seed mIoU against seg_miou, one point per cell](seg.png)" in out.read_text()
    assert Image.open(out.with_suffix(".png")).size == (720, 540)
    assert sorted(p.name for p in out.parent.iterdir()) == ["seg.md", "seg.png"]


def test_the_synth_recipe_trains_the_measured_budget():
    """The synth recipe's iterations are the plateau budget the results page measured: a new
    budget curve that moves B fails here until the recipe follows (one fact, checked in two
    places rather than silently kept in two)."""
    import re
    from pathlib import Path

    from harness.segment.settings import RECIPES

    page = (Path(__file__).parents[1] / "docs" / "results" / "segmentation-synth.md").read_text()
    measured = int(re.search(r"\*\*Budget B = (\d+) iterations\*\*", page).group(1))
    assert RECIPES["synth"]["seg_iterations"] == measured == 1200


def test_held_out_lists_what_is_not_reached():
    """Main pairs 0/0, 1/0, 2/0: cam 50, 51, 52; semples +10; clims −10 (seed Δ = seg Δ, sd 0
    → CIs of zero width: every ordering carries). Held-out: FS, cam and semples at 21/7 only,
    semples 2 below cam there (its seed too): cam → semples does NOT hold, the masks' order
    reversed there and seg followed it; the orderings with clims and
    FS − clims are not reached, and say so."""
    recs = [_rec(v, s, 50.0 + s + off) for s in (0, 1, 2)
            for v, off in (("cam", 0), ("semples", 10), ("clims", -10))]
    recs += [_rec("segment/gt", s, 90.0) for s in (0, 1, 2, 21)]
    recs += [_rec("cam", 21, 60.0, teacher=7), _rec("semples", 21, 58.0, teacher=7)]
    got = S.cells(recs, 400)
    lines = S.held_out_lines(S.Measurement(got, S.PAIRS), S.Measurement(got, S.HELD_OUT))
    assert "- FS − cam: +30.00 (+30.00): FS ≥ cam holds" in lines
    assert "- FS − clims: -: not reached" in lines
    assert ("- cam → semples (carries on the main pairs, seg Δ +10.00): held-out seg Δ -2.00 "
            "(-2.00): direction does NOT hold (held-out seed Δ -2.00: the masks' order reversed; "
            "seg Δ follows it)") in lines
    assert any(x.startswith("- cam → clims") and x.endswith("direction not reached") for x in lines)
    assert lines[-1] == "Carrying orderings at the held-out pairs: 0 holds, 1 does NOT hold, 2 not reached."


def test_two_teacher_free_rows_count_each_seed_once():
    """cam reads no teacher: its runs at s/0 and s/1 hold the same numbers. FS − cam over
    seeds 0, 1 has Δ 20, 21 → n 2, not 4 (no CI narrowed by a repeated value); FS − semples
    (semples reads the teacher) keeps its 4 pairs."""
    recs = [_rec("segment/gt", 0, 90.0), _rec("segment/gt", 1, 92.0)]
    recs += [_rec("cam", s, 70.0 + s, teacher=t) for s in (0, 1) for t in (0, 1)]
    recs += [_rec("semples", s, 75.0 + s + t, teacher=t) for s in (0, 1) for t in (0, 1)]
    m = S.Measurement(S.cells(recs, 400), S.PAIRS)
    assert m.teacher_free(S.FS) and m.teacher_free("cam") and not m.teacher_free("semples")
    d = m.delta(S.FS, "cam", "seg_miou")
    assert d.n == 2 and d.mean == pytest.approx(20.5)
    assert m.delta(S.FS, "semples", "seg_miou").n == 4
    assert m.repeats("cam") == (2, 2)
    assert S.teacher_free_lines(m)[0].startswith("Rows that read no teacher: FS, cam.")
