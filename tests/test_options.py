"""One definition of each run option (cli/options.py): every command that starts runs accepts
every option its runs need, with the same name, help and environment variable; and a sweep
trial (a local worker's or a Slurm job's) and a `bench reproduce` cell hand them all to
`harness.runner.run_variant`, the pseudo masks resolved as `bench run` resolves them."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cli import _register, app
from harness.record import RunRecord
from harness.run_options import RunOptions

_register()  # every command on `app`, whichever test of this module runs first (or alone)

RUN_INPUTS = ["--data-root", "--clip-weights", "--backbone-weights", "--vqa-path",
              "--cam-weights", "--allow-random-weights"]
RUN_DIRS = ["--runs-dir", "--cache-dir", "--wandb", "--set", "--epochs"]
MASKS = ["--masks", "--mask-set", "--irn-weights"]  # the pseudo masks (docs/masks.md)
NEEDS = {
    "run": [*RUN_INPUTS, *RUN_DIRS, *MASKS, "--device"],
    "sweep": [*RUN_INPUTS, *RUN_DIRS, *MASKS, "--device", "--devices"],
    "reproduce": [*RUN_INPUTS, *RUN_DIRS, *MASKS, "--device", "--devices"],
    # pseudo masks from a CAM folder: its pipeline is --pipeline (irn or crf, never none)
    "masks": ["--data-root", "--backbone-weights", "--allow-random-weights", "--cache-dir",
              "--set", "--mask-set", "--irn-weights", "--device"],
    # the QAPE corpus: the train split and the answerer, cached under the cache dir
    "qape": ["--data-root", "--vqa-path", "--allow-random-weights", "--device", "--cache-dir",
             "--set"],
    # scoring CAM files: the eval split only
    "eval": ["--data-root", "--cache-dir", "--set"],
}
# the same name, another option: `bench eval --masks DIR` scores a folder of mask PNGs
OTHER_MEANING = {("eval", "--masks")}


def _commands() -> dict[str, dict[str, object]]:
    _register()
    group = typer.main.get_command(app)
    return {name: {o: p for p in cmd.params for o in p.opts} for name, cmd in group.commands.items()}


def test_every_command_accepts_every_run_option_it_needs_with_one_definition():
    commands = _commands()
    for name, needed in NEEDS.items():
        missing = [o for o in needed if o not in commands[name]]
        assert not missing, f"bench {name} lacks {missing}"
    # one definition: the same help, env var and default in every command that starts runs
    # (`bench report --set/--epochs/--wandb` select and log, they start nothing)
    seen: dict[str, tuple] = {}
    for name, params in ((n, commands[n]) for n in NEEDS):
        for opt in {o for needed in NEEDS.values() for o in needed}:
            p = params.get(opt)
            if p is None or (name, opt) in OTHER_MEANING:
                continue
            key = (p.help, p.envvar, p.default, p.multiple)
            assert seen.setdefault(opt, key) == key, f"bench {name} {opt} differs: {key} vs {seen[opt]}"
    assert seen["--runs-dir"][1] == "BENCH_RUNS_DIR" and seen["--cache-dir"][1] == "BENCH_CACHE_DIR"


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    """Real files and folders for every input option (resolve_config checks --cam-weights)."""
    root = tmp_path / "voc"
    root.mkdir()
    files = {"clip_weights": tmp_path / "clip.pt", "backbone_weights": tmp_path / "r50.pth",
             "cam_weights": tmp_path / "cam.pth", "irn_weights": tmp_path / "irn.pt"}
    for f in files.values():
        f.write_bytes(b"x")
    vqa = tmp_path / "blip"
    vqa.mkdir()
    return {"data_root": root, **files, "vqa_path": vqa}


# the pseudo masks a run is asked for: IRN with two settings of its own (beta's default is
# 10, exp_times' 8), or none (a voc cam run makes IRN masks by default)
MASK_ARGV = {"irn": ["--masks", "irn", "--mask-set", "beta=7", "--mask-set", "exp_times=4"],
             "none": ["--masks", "none"]}


def _argv(inputs: dict[str, Path], runs: Path, cache: Path, masks: str = "irn") -> list[str]:
    # every input the run reads: without IRN masks --irn-weights is refused (harness/reads.py)
    argv = [a for k, v in inputs.items() if masks == "irn" or k != "irn_weights"
            for a in ("--" + k.replace("_", "-"), str(v))]
    return [*argv, "--allow-random-weights", "--runs-dir", str(runs), "--cache-dir", str(cache),
            "--wandb", "disabled", "--epochs", "2", *MASK_ARGV[masks]]


class RunSpy:
    """Stands in for run_variant at the boundary: resolves the real RunConfig from what it
    was handed (as the real one does first) and keeps it, then returns a record."""

    def __init__(self):
        self.calls: list[tuple] = []

    def __call__(self, variant, dataset="synth", seed=0, sets=(), epochs=None, device="auto",
                 **kw):
        from harness.runner import resolve_config

        paths = {k: kw[k] for k in (*RUN_INPUTS_FIELDS, "threshold_split") if k in kw}
        cfg = resolve_config(variant, dataset, seed, list(sets), epochs, "cpu", **paths)
        self.calls.append((cfg, kw))
        return RunRecord(seed_miou=10.0 + seed, run_id=f"spy-{len(self.calls)}")


RUN_INPUTS_FIELDS = ("data_root", "clip_weights", "backbone_weights", "vqa_path", "cam_weights",
                     "irn_weights", "allow_random_weights", "masks", "mask_sets")


def _bench_run_masks(inputs, runs, cache, masks: str, monkeypatch) -> dict | None:
    """The pseudo masks `bench run qa-clims --dataset voc` resolves from the same options
    (qa-clims: a family that reads every input option, CLIP and VQA ones included)."""
    import harness.runner

    spy = RunSpy()
    monkeypatch.setattr(harness.runner, "run_variant", spy)
    res = CliRunner().invoke(app, ["run", "qa-clims", "--dataset", "voc", "--device", "cpu", "--json",
                                   *_argv(inputs, runs, cache, masks)])
    assert res.exit_code == 0, res.output
    ((cfg, _),) = spy.calls
    return cfg.masks


def _check_masks(cfg, expected: dict | None, masks: str) -> None:
    assert cfg.masks == expected
    if masks == "none":
        assert expected is None  # off: no pseudo-mask stage, no IRN trained
        return
    # by hand: --masks irn, the two --mask-set values, --epochs 2 sets IRN's epochs too,
    # the rest QA-CLIMS's (run_sample.py conf_fg_thres 0.30; its parser.py sem_seg_bg_thres 0.2)
    assert (expected["pipeline"], expected["beta"], expected["exp_times"]) == ("irn", 7.0, 4)
    assert (expected["irn_epochs"], expected["conf_fg_thres"], expected["sem_seg_bg_thres"]) \
        == (2, 0.30, 0.2)


def _check_received(cfg, kw, inputs, runs, cache) -> None:
    for field in ("data_root", "clip_weights", "backbone_weights", "vqa_path", "cam_weights",
                  "irn_weights"):
        given = field != "irn_weights" or cfg.masks is not None
        assert getattr(cfg, field) == (str(inputs[field].resolve()) if given else None), field
    assert cfg.allow_random_weights is True
    from harness.registry import get_method

    stages = get_method(cfg.method).epoch_fields  # --epochs: every stage's epochs
    assert stages and {getattr(cfg.params, f) for f in stages.values()} == {2}
    assert Path(kw["runs_dir"]).resolve() == runs.resolve()
    assert Path(kw["cache_dir"]).resolve() == cache.resolve()
    assert kw["wandb_mode"] == "disabled"


@pytest.mark.parametrize("masks", ["irn", "none"])
def test_a_sweep_trial_receives_every_run_option(tmp_path, inputs, monkeypatch, masks):
    """The CLI builds the request; its worker command line parses back to the same options;
    the worker's trial hands them to run_variant. A Slurm job's worker gets them pickled
    (sweeps.slurm.launch_sweep → sweep_job): its trial receives the same. It sweeps the
    generator's lr: beside --cam-weights the CAM stage's cam_lr is refused (not read)."""
    import harness.runner
    import sweeps.launcher
    from sweeps import slurm as sj
    from sweeps import storage as st
    from sweeps.launcher import worker_command
    from sweeps.worker import parser, run_worker

    runs, cache = tmp_path / "runs", tmp_path / "cache"
    expected = _bench_run_masks(inputs, runs, cache, masks, monkeypatch)
    got = {}
    monkeypatch.setattr(sweeps.launcher, "launch", lambda req, console: got.setdefault("req", req)
                        and {"exit_codes": [0], "failures": [], "complete": 1})
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["sweep", "custom", "--method", "qa-clims", "--param",
                                   "lr=grid:0.0007", "--dataset", "voc",
                                   *_argv(inputs, Path("runs"), Path("cache"), masks)])
    assert res.exit_code == 0, res.output
    req = got["req"]
    assert req.epochs == 2 and req.definition()["epochs"] == 2
    argv = worker_command(req, "s", "cpu", "w0")[3:]
    parsed = RunOptions.from_namespace(parser().parse_args(argv))
    assert parsed == req.options.absolute() and parsed.runs_dir == runs.resolve()
    assert parsed.irn_weights == (inputs["irn_weights"].resolve() if masks == "irn" else None)

    spy = RunSpy()
    monkeypatch.setattr(harness.runner, "run_variant", spy)
    for study, run in (("s", lambda ref: run_worker(ref, "s", "cpu", parsed, log=lambda m: None)),
                       ("slurm", lambda ref: sj.sweep_job(
                           0, "slurm", ref.url, "cpu", pickle.loads(pickle.dumps(req.options.absolute())),
                           None, None, "none", 60))):
        ref = st.resolve(None, runs, study)
        st.create_study(st.open_storage(ref), study, req.definition(), "maximize")
        complete = run(ref)
        assert (complete if isinstance(complete, int) else complete.complete) == 1
    assert len(spy.calls) == 2
    for (cfg, kw), group in zip(spy.calls, ("s", "slurm"), strict=True):
        assert (cfg.variant, cfg.dataset, cfg.params.lr) == ("qa-clims", "voc", 0.0007)
        assert kw["group"] == group
        _check_received(cfg, kw, inputs, runs, cache)
        _check_masks(cfg, expected, masks)


@pytest.mark.parametrize("masks", ["irn", "none"])
@pytest.mark.parametrize("launcher", ["local", "slurm"])
def test_a_reproduce_cell_receives_every_run_option(tmp_path, inputs, monkeypatch, masks, launcher):
    """Every cell's run, here or in a Slurm job: a job receives (job, device, CellOptions)
    pickled (reports.reproduce._run_slurm → run_cell), as the stand-in below hands them."""
    import harness.runner
    import reports.reproduce
    from methods.papers import Published
    from reports import tables
    from reports.tables import Row, Table

    def slurm_array(jobs, cell, slurm, devices, folder, out, log):  # what each array task runs
        for job in jobs:
            args = pickle.loads(pickle.dumps((job, "cpu", cell)))
            reports.reproduce._tally(out, job, reports.reproduce.run_cell(*args), log)

    monkeypatch.setattr(reports.reproduce, "_run_slurm", slurm_array)
    checked = []  # the inputs here are names, not data: the preflight sees the cells' options
    monkeypatch.setattr(reports.reproduce, "preflight",
                        lambda job, cell: checked.append(cell.options) or "preflight (stand-in)")
    monkeypatch.setitem(tables.TABLES, "tiny-cam", Table(
        "tiny-cam", "tiny", (Row("QA-CLIMS", "qa-clims", Published(70.6, "QA-CLIMS Table 1")),)))
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    expected = _bench_run_masks(inputs, runs, cache, masks, monkeypatch)
    spy = RunSpy()
    monkeypatch.setattr(harness.runner, "run_variant", spy)
    res = CliRunner().invoke(app, ["reproduce", "tiny-cam", "--dataset", "voc", "--seeds", "2",
                                   "--device", "cpu", "--launcher", launcher,
                                   *_argv(inputs, runs, cache, masks)])
    assert res.exit_code == 0, res.output
    assert [c.seed for c, _ in spy.calls] == [0, 1]
    assert len(checked) == (1 if launcher == "local" else 0)  # slurm's runs in _run_slurm
    for cfg, kw in spy.calls:
        assert (cfg.variant, cfg.dataset) == ("qa-clims", "voc") and kw["group"] == "reproduce-tiny-cam"
        _check_received(cfg, kw, inputs, runs, cache)
        _check_masks(cfg, expected, masks)


def test_a_command_module_that_fails_to_import_fails_bench(monkeypatch):
    """cli._register imports every listed command module; a missing or broken one raises
    instead of silently leaving its commands out."""
    import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "no_such_cmd"))
    with pytest.raises(ModuleNotFoundError, match="cli.no_such_cmd"):
        cli._register()
