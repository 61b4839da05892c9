"""`bench` in-process: the version, and every bad input as one error line and a non-zero exit
(cli._invoke, exactly what `bench` runs after its process setup; tests/test_cli.py keeps a few
of them as subprocess smoke tests)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import cli

REPO = Path(__file__).resolve().parents[1]


def bench_in_process(capsys, *argv: str) -> tuple[int, str, list[str]]:
    """(exit code, stdout, stderr lines) of `bench ARGV`."""
    cli._register()
    code = cli._invoke(False, [], list(argv))
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def assert_one_line_error(capsys, fragment: str, *argv: str) -> None:
    code, _, lines = bench_in_process(capsys, *argv)
    assert code != 0
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], lines  # log lines may precede it
    assert fragment in errors[0], errors[0]


def test_version_is_pyprojects():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli.app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"wsss-bench {version}"


@pytest.mark.parametrize("args,fragment", [
    (["run", "no-such-method"], "unknown method"),
    (["run", "cam", "--dataset", "imagenet"], "unknown dataset"),
    (["run", "cam", "--set", "lambda_nope=1"], "unknown setting"),
    (["run", "cam", "--set", "p_cooccur=1.5"], "p_cooccur must be ≤ 1"),
    (["run", "cam", "--set", "batch_size=many"], "batch_size expects a int"),
    (["run", "cam", "--set", "batch_size"], "key=value"),
    (["sweep", "lambda_refine", "--launcher", "bogus"], "'bogus' is not one of 'local', 'slurm'"),
    (["reproduce", "ablation", "--launcher", "bogus"], "is not one of"),
    (["eval", "--cams", ".", "--masks", "."], "give exactly one"),
    (["eval", "--cams", ".", "--plot", "x.jpg"], "ending in .png"),
])
def test_bad_input_is_one_line(args, fragment, capsys, cache_dir):
    assert_one_line_error(capsys, fragment, *args)


SMALL_EVAL = ["--set", "n_eval=8"]  # synth's eval split at 8 images (the cached test arrays)


@pytest.mark.parametrize("args,fragment", [
    (["--cams", "/nonexistent/cams"], "does not exist"),
    (["--cams", ".", "--threshold-split", "eval"], "shares 8 of its 8 images"),
    (["--cams", ".", "--threshold-split", "nope"], "synth has no split 'nope'"),
])
def test_bad_eval_input_is_one_line(args, fragment, capsys, cache_dir):
    assert_one_line_error(capsys, fragment, "eval", *args, *SMALL_EVAL)


def test_missing_cam_files(capsys, cache_dir, tmp_path):
    (tmp_path / "cams").mkdir()
    assert_one_line_error(capsys, "lacks 8", "eval", "--cams", str(tmp_path / "cams"), *SMALL_EVAL)


@pytest.mark.parametrize("args, says", [
    (["--set", "lambda_refine=inf"], "lambda_refine must be a finite number"),
    (["--set", "lambda_b=-inf"], "lambda_b must be a finite number"),
    (["--seed", "-1"], "--seed must be an integer in 0 … 4294967295"),
    (["--seed", str(2**32)], "--seed must be an integer in 0 … 4294967295"),
    (["--set", f"teacher_seed={2**32}"], "teacher_seed must be ≤ 4294967295"),
])
def test_bad_values_are_refused_before_anything_is_made(args, says, capsys, cache_dir, tmp_path):
    assert_one_line_error(capsys, says, "run", "semples", *args, "--runs-dir", str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_report_of_an_unknown_run_is_one_line(capsys, tmp_path):
    assert_one_line_error(capsys, "--run nosuchid: no ok run", "report", "--run", "nosuchid",
                          "--runs-dir", str(tmp_path))


def test_report_sub_commands_print_what_the_old_spellings_print(capsys, tmp_path):
    """`bench report list|table|compare|per-class` and `bench report --list|--table …`: the
    same output (an empty store: every cell missing, with the command that fills it)."""
    runs = ["--runs-dir", str(tmp_path)]
    pairs = [(["report", "list"], ["report", "--list"]),
             (["report", "table", "seeds", "--format", "markdown", "--seeds", "2", *runs],
              ["report", "--table", "seeds", "--format", "markdown", "--seeds", "2", *runs])]
    for new, old in pairs:
        code_new, out_new, _ = bench_in_process(capsys, *new)
        code_old, out_old, _ = bench_in_process(capsys, *old)
        assert code_new == code_old == 0 and out_new == out_old and out_new.strip()
    code, out, _ = bench_in_process(capsys, "report", "list")
    assert out.splitlines()[0].split()[0] == "ablation" and "per-class" in out
    code, out, _ = bench_in_process(capsys, "report", "compare", "seeds", "CAM", "SemPLeS", *runs)
    assert code == 0 and "no pair measured by both rows" in out
    assert_one_line_error(capsys, "needs --run RUN_ID", "report", "per-class", *runs)
