"""The one entry point `bench run` and every sweep trial call: resolve, train, infer,
evaluate, record."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import package_version
from harness.config import RunConfig, check_seed, parse_sets
from harness.data import default_cache_dir
from harness.environment import fingerprint
from harness.errors import BenchError, NonFiniteLoss, check_file
from harness.evaluate import FIXED_THRESHOLD, SeedEvaluator, check_threshold_split, split_scores
from harness.infer import infer_cams
from harness.memory import large_tensors_from_mmap
from harness.method import RunContext
from harness.per_image import FILE as IMAGES_FILE
from harness.per_image import ImageLog
from harness.progress import log as default_log
from harness.provenance import input_hashes, run_provenance
from harness.reads import refuse_unread, refuse_unread_with
from harness.record import SCHEMA_VERSION, RunRecord
from harness.registry import get_method, get_variant
from harness.run_options import RunOptions, config_fields, kind_of
from harness.seeding import isolated_rng, seed_all
from harness.store import ResultsStore, git_revision
from harness.tracking import Tracker, resolve_mode, slurm_job


def resolve_config(variant: str, dataset: str = "synth", seed: int = 0, sets: list[str] = (),
                   epochs: int | None = None, device: str = "auto", masks: str | None = None,
                   mask_sets: list[str] = (), segment: str | None = None,
                   seg_weights: str | Path | None = None, **paths: Any) -> RunConfig:
    """Dataset defaults → variant overrides → --epochs (every stage) → --set → validated
    frozen config. `paths`: data_root, clip_weights, backbone_weights, vqa_path, cam_weights,
    irn_weights (file paths) and allow_random_weights. `masks` (irn, crf, none; None: the
    family's default on this dataset) and `mask_sets` (key=value) choose the pseudo masks;
    `segment` (a model, or none) and `seg_weights` (its init) the segmentation stage, which
    takes the seg_* items of `sets`."""
    from harness.masks.settings import resolve_masks

    check_seed(seed)
    v = get_variant(variant)
    method = get_method(v.family)
    cls = method.config_cls
    values = {**method.dataset_defaults(dataset), **v.overrides()}
    if epochs is not None:
        if not method.epoch_fields and segment in (None, "none"):  # no stage it could bound
            raise BenchError(f"--epochs is not read by this run: {v.family} names no stage "
                             "epochs (Method.epoch_fields; a family that trains nothing has "
                             "none) and no --segment stage was asked for")
        values.update({name: epochs for name in method.epoch_fields.values()})
    from harness.segment.settings import is_seg_setting

    seg_sets = [s for s in sets if is_seg_setting(s.partition("=")[0].strip())]
    given = parse_sets(cls, [s for s in sets if s not in seg_sets])
    refuse_unread_with(cls, given, paths)  # e.g. --set cam_lr beside --cam-weights
    values.update(given)
    params = cls(**values).validate()
    for option in ("cam_weights", "irn_weights"):
        check_file(f"--{option.replace('_', '-')}", paths.get(option))
    # --epochs sets IRN's too (it is a stage this run trains: `stage_epochs`)
    mask_defaults = {**method.mask_defaults(dataset), **({"irn_epochs": epochs} if epochs else {})}
    mask_settings, fallback = default_masks(resolve_masks(mask_defaults, masks, list(mask_sets)),
                                            masks, v.family, dataset)
    from harness.segment.stage import request

    seg = request(segment, seg_weights, seg_sets, epochs, bool(paths.get("allow_random_weights")),
                  dataset)
    cfg = RunConfig(method=v.family, variant=v.name, dataset=dataset, seed=seed,
                    device=resolve_device(device), params=params, **_config_inputs(paths),
                    threshold_split=paths.get("threshold_split") or None,
                    masks=mask_settings.to_dict() if mask_settings.pipeline != "none" else None,
                    segment=seg.to_dict() if seg else None,
                    masks_fallback=fallback)
    # an input this run would record and key but never read: refused, or dropped (reads.py)
    return refuse_unread(cfg, RunOptions)


def default_masks(settings, asked: str | None, family: str, dataset: str):
    """(settings, why they fell back or None). Both reference pipelines end in a dense CRF,
    whose binding (pydensecrf2) ships as source only: a C++ build, so it stays an extra
    (`[masks]`) rather than fail a default install. A run whose masks are the family's
    default (no --masks) on an install without it makes no masks and says so, once, in its
    log and its record; its seed mIoU does not depend on them. --masks crf|irn still
    refuses in one line (harness/masks/crf.py)."""
    from harness.masks import crf

    if asked is not None or settings.pipeline == "none" or crf.available():
        return settings, None
    why = (f"no pseudo masks: {family}'s reference masks on {dataset} ({settings.pipeline}) "
           "need the dense CRF, not installed (pip install 'wsss-bench[masks]'); the seed mIoU "
           "does not depend on them")
    return dataclasses.replace(settings, pipeline="none"), why


def _config_inputs(given: dict[str, Any]) -> dict[str, Any]:
    """The RunOptions inputs among `given`, as RunConfig holds them (paths as str)."""
    out = {}
    for f in config_fields():
        value = given.get(f.name, f.default)
        out[f.name] = bool(value) if kind_of(f) is bool else (str(value) if value is not None
                                                              else None)
    return out


def stage_epochs(cfg: RunConfig) -> dict[str, int]:
    """The epochs of every stage this run trains (the CAM stage none with --cam-weights)."""
    epochs = get_method(cfg.method).stage_epochs(cfg.params)
    if cfg.cam_weights:
        epochs.pop("cam", None)
    if cfg.masks and cfg.masks["pipeline"] == "irn" and not cfg.irn_weights:
        epochs["irn"] = cfg.masks["irn_epochs"]
    if cfg.segment and cfg.segment.get("epochs") is not None:
        epochs["segment"] = cfg.segment["epochs"]
    return epochs


def stage_epochs_line(epochs: dict[str, int]) -> str:
    return "epochs per stage: " + ", ".join(f"{s} {n}" for s, n in epochs.items())


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"--device {device} asked for, but this machine has no CUDA device")
    if not (device == "cpu" or device.startswith("cuda")):
        raise BenchError(f"--device must be cpu, cuda or cuda:N (got {device!r})")
    return device


def run(cfg: RunConfig, runs_dir: Path | str | None = None, cache_dir: Path | None = None,
        wandb_mode: str | None = None, resume: bool = False, group: str | None = None,
        on_epoch: Callable[[str, int, dict[str, float]], None] | None = None,
        log: Callable[[str], None] = default_log, show_progress: bool = True) -> RunRecord:
    """Run one configuration end to end and return its result record (also stored).

    What the run sets for itself stays inside it: the global random states are seeded from
    `cfg.seed` and put back after (harness.seeding), and on real-size images glibc serves
    large blocks from mmap only until the run ends (harness.memory)."""
    # real-size activations leave when freed; synth's small ones keep glibc's heap
    memory = large_tensors_from_mmap() if cfg.dataset != "synth" else contextlib.nullcontext()
    with isolated_rng(), memory:
        return _run(cfg, runs_dir, cache_dir, wandb_mode, resume, group, on_epoch, log,
                    show_progress)


def _run(cfg: RunConfig, runs_dir: Path | str | None, cache_dir: Path | None,
         wandb_mode: str | None, resume: bool, group: str | None,
         on_epoch: Callable[[str, int, dict[str, float]], None] | None,
         log: Callable[[str], None], show_progress: bool) -> RunRecord:
    t0 = time.time()
    check_seed(cfg.seed)  # before the runs dir is made
    store = ResultsStore(runs_dir)
    run_dir = store.begin(cfg.method, cfg.variant, cfg.seed)
    run_dir.write_json("config.json", cfg.to_dict())
    mode = resolve_mode(wandb_mode)
    tracker = ctx = None
    record: dict[str, Any] = _base_record(cfg, run_dir.run_id)
    try:
        tracker = Tracker(mode, run_dir.path, run_dir.run_id, cfg.to_dict(), group=group,
                          tags=[cfg.method, cfg.dataset])

        def epoch_hook(stage: str, epoch: int, means: dict[str, float]) -> None:
            row = {"stage": stage, "epoch": epoch + 1, **means}
            run_dir.append_metrics(row)
            tracker.log({f"{stage}/{k}": v for k, v in means.items()} | {"epoch": epoch + 1})
            if on_epoch:
                on_epoch(stage, epoch, means)

        ctx = RunContext(cfg, Path(cache_dir or default_cache_dir()), torch.device(cfg.device),
                         resume=resume, log=log, on_epoch=epoch_hook, show_progress=show_progress)
        seed_all(cfg.seed)
        # bad data, then bad weights, are the first errors: before any stage trains
        ctx.dataset("train")
        ctx.dataset("eval")
        _check_threshold_split(ctx)
        if get_method(cfg.method).needs_teacher:
            ctx.teacher  # noqa: B018 - loaded now: a wrong --clip-weights file fails first
        check_masks(ctx)  # a missing CRF binding or IRN weights fail before any training too
        if record["settings_from"] != cfg.dataset:
            log(f"{cfg.dataset}: {cfg.method} has no settings of its own for this dataset; "
                f"its {record['settings_from']} settings apply (recorded as settings_from)")
        if cfg.masks_fallback:
            log(cfg.masks_fallback)  # the one visible line; the record keeps it too
        log(stage_epochs_line(record["stage_epochs"]))
        model = get_method(cfg.method)().train(ctx).to(ctx.device)
        scores, overlays = _evaluate(ctx, model, run_dir.path / "cams")
        record.update(scores.as_record())
        if cfg.masks:
            record.update(pseudo_masks(ctx, run_dir.path, scores.best_threshold))
        if cfg.segment:
            from harness.segment.run import segment_after_run

            seg, record["provenance"]["segment"] = segment_after_run(
                ctx, model, run_dir.path, scores.best_threshold)
            record.update(seg)
        record.update(status="ok", teacher=ctx.teacher_info,
                      stage_cache={"hits": ctx.stages.hits, "misses": ctx.stages.misses})
    except NonFiniteLoss as exc:
        record.update(status="failed", error=str(exc))
    except BaseException as exc:
        run_dir.discard()  # nothing half-written: an interrupted run leaves no folder
        if tracker:
            tracker.finish(exit_code=1)
        if isinstance(exc, KeyboardInterrupt):
            _say_what_stays(exc, ctx, run_dir.path.name)
        raise
    record["wall_s"] = round(time.time() - t0, 2)
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    if tracker:
        tracker.summary(record, list(ctx.dataset("eval").class_names) if record["status"] == "ok"
                        else [], overlays if record["status"] == "ok" else [])
        tracker.finish(exit_code=0 if record["status"] == "ok" else 1)
    result = RunRecord.from_dict(record)
    result = dataclasses.replace(result, path=str(run_dir.finish(result)))
    if not result.ok:
        failure = NonFiniteLoss(f"{result.error} (recorded as failed in {result.path})")
        failure.record = result  # sweeps mark the trial failed with this reason and go on
        raise failure
    return result


def run_variant(variant: str, dataset: str = "synth", seed: int = 0, sets: list[str] = (),
                epochs: int | None = None, device: str = "auto", *, runs_dir: Path | str | None = None,
                cache_dir: Path | None = None, wandb_mode: str | None = None, resume: bool = False,
                group: str | None = None,
                on_epoch: Callable[[str, int, dict[str, float]], None] | None = None,
                log: Callable[[str], None] = default_log, show_progress: bool = True,
                **paths: Any) -> RunRecord:
    """`bench run VARIANT`: resolve the config (`resolve_config`), then `run` it. The one
    entry point of the CLI, `bench reproduce` and every sweep trial; returns the record."""
    cfg = resolve_config(variant, dataset, seed, list(sets), epochs, device, **paths)
    return run(cfg, runs_dir=runs_dir, cache_dir=cache_dir, wandb_mode=wandb_mode, resume=resume,
               group=group, on_epoch=on_epoch, log=log, show_progress=show_progress)


def _say_what_stays(exc: BaseException, ctx: RunContext | None, run_folder: str) -> None:
    """For the CLI's Ctrl-C line: the stages finished (cached, kept) and what was dropped."""
    stages = ctx.__dict__.get("stages") if ctx is not None else None
    exc.bench_kept = [*stages.hits, *stages.built] if stages else []
    dropped = []
    if stages and stages.building:
        dropped.append(f"the unfinished stage {stages.building} (its finished epochs stay for "
                       "--resume)")
    dropped.append(f"this run's folder {run_folder}")
    exc.bench_dropped = dropped


def check_masks(ctx: RunContext) -> None:
    if ctx.cfg.masks:
        from harness.masks.settings import from_dict
        from harness.masks.stage import check_pipeline, check_weights

        settings = from_dict(ctx.cfg.masks)
        check_pipeline(settings)
        check_weights(ctx, settings)


def pseudo_masks(ctx: RunContext, run_path: Path, seed_threshold: float) -> dict[str, Any]:
    """The run's pseudo masks (a cached stage), copied into the run folder and scored."""
    import shutil

    from harness.masks.score import score_mask_folder
    from harness.masks.settings import from_dict
    from harness.masks.stage import make_masks

    ds = ctx.dataset("eval")
    folder, prov = make_masks(ctx, ds, run_path / "cams", from_dict(ctx.cfg.masks), seed_threshold)
    shutil.copytree(folder, run_path / "masks")
    scores = score_mask_folder(ds, run_path / "masks")
    ctx.log(f"pseudo masks ({prov['pipeline']}): mask mIoU {scores['mask_miou']:.2f}")
    return {**scores, "mask_provenance": {**prov, "settings": ctx.cfg.masks}}


def _base_record(cfg: RunConfig, run_id: str) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "method": cfg.method,
        "variant": cfg.variant, "dataset": cfg.dataset, "seed": cfg.seed,
        "hparams": cfg.hparams(), "config": cfg.to_dict(), "device": cfg.device,
        "device_name": (torch.cuda.get_device_name() if cfg.device.startswith("cuda")
                        else platform.processor() or platform.machine()),
        "package_version": package_version(), "git_rev": git_revision(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "allow_random_weights": cfg.allow_random_weights, "status": "running", "error": None,
        "stage_epochs": stage_epochs(cfg),
        "settings_from": get_method(cfg.method).settings_source(cfg.dataset),
        "optimisation": optimisation_record(cfg),
        "host": platform.node(), "pid": os.getpid(), "slurm_job": slurm_job(),
        # float reductions on CPU depend on the thread count (a parallel worker gets fewer
        # threads), so bit-identical reruns need the same count: record it
        "torch_threads": torch.get_num_threads(),
        "environment": fingerprint(),  # what can move a number between machines
        "masks_fallback": cfg.masks_fallback,
        "inputs": input_hashes(cfg),  # sha256 of the files it reads: `bench run --from` checks
    }


def optimisation_record(cfg: RunConfig) -> dict[str, Any]:
    """How this run's stages step, as the references step: the optimiser (SGD momentum 1e-4
    is IRN PolyOptimizer's real value, see harness.config GeneratorConfig `momentum`), the per-step
    loss scale (`loss_replicas`: summed losses divided by the reference's data-parallel
    replicas) and the resampling of the maps; each family's settings say
    (`MethodConfig.optimisation`)."""
    return cfg.params.optimisation()


def _check_threshold_split(ctx: RunContext) -> None:
    split = getattr(ctx.cfg, "threshold_split", None)
    if split:
        check_threshold_split(ctx.dataset("eval"), ctx.dataset(split))


def _evaluate(ctx: RunContext, model, cam_dir: Path):
    """Score the eval split's CAMs (t picked on the held-out split's when asked): both made
    by the family's one inference spec, so t is picked on maps normalised as it is applied to."""
    ds, spec = ctx.dataset("eval"), ctx.inference
    split = getattr(ctx.cfg, "threshold_split", None)
    overlays = []
    images: ImageLog | None = None

    def cams(split_ds, folder: Path):
        return infer_cams(model, split_ds, folder, ctx.device, spec,
                          show_progress=ctx.show_progress)

    def feed_eval(ev: SeedEvaluator, ds) -> None:
        nonlocal images
        images = ImageLog(ev)
        for i, (keys, high, gt, context) in enumerate(cams(ds, cam_dir)):
            counts = ev.scorer(keys, high, gt, context)
            ev.add_counts(counts)
            images.add(ds.image_names[i], counts)
            if i < 4:
                overlays.append((ds.image(i), _argmax_label(keys, high), gt))

    def feed_held(ev: SeedEvaluator, held) -> None:
        for keys, high, gt, _ in cams(held, cam_dir.parent / f"cams-{split}"):
            ev.add(keys, high, gt)

    scores = split_scores(ds, feed_eval, ctx.dataset(split) if split else None, feed_held)
    scores.provenance = run_provenance(ctx, len(ds), spec, split)
    images.write(cam_dir.parent / IMAGES_FILE, scores.best_threshold)  # beside result.json
    return scores, overlays


def _argmax_label(keys: np.ndarray, high: np.ndarray, t: float = FIXED_THRESHOLD) -> np.ndarray:
    from harness.evaluate import predict

    return predict(keys, high, t).astype(np.uint8)
