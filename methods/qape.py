"""QAPE: the question-answer corpus of QA-CLIMS, built once, cached, resumable.

For every (train image, present class) the answerer (`methods.vqa`) answers the 16
templates. Raw answers are appended to a JSONL shard as each image finishes (flushed and
fsynced), so an interrupted build continues where it stopped and never re-asks a finished
item; when all items are in, the shard is finalised into the stage folder (the stage
cache renames it into place atomically). The stage key covers the data, the answerer and
the templates, plus `QAPE_VERSION`.

Post-processing (QA-CLIMS paper §3.2) runs on the raw answers when texts are needed,
so one corpus serves every question-set ablation:
lemmatise (lemminflect, nouns); FG answers lacking the class name get it appended
("passenger" → "passenger train"), plus the bare class name (L+1 FG texts); BG answers
have the class name removed and are deduplicated; every text is "a photo of {answer}.".
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.errors import BenchError
from harness.progress import progress_bar
from harness.wording import photo_prompt
from methods.vqa import (
    BG_SETS,
    FG_SETS,
    TEMPLATES,
    BlipAnswerer,
    RandomBlipAnswerer,
    SynthAnswerer,
    templates_hash,
)

QAPE_VERSION = 1
_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


# ----------------------------------------------------------------------------- post-processing


def lemmatise(text: str) -> str:
    """Lower-case words, each lemmatised as a noun ("trees" → "tree"); punctuation dropped."""
    from lemminflect import getLemma

    out = []
    for word in _WORD.findall(text.lower()):
        lemma = getLemma(word, upos="NOUN")
        out.append(lemma[0] if lemma else word)
    return " ".join(out)


def _contains(text: str, name: str) -> bool:
    """Whether the (lemmatised) class name occurs in the text as whole words."""
    return re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", text) is not None


wrap = photo_prompt  # every text is "a photo of {answer}."


def fg_texts(class_name: str, answers: Iterable[str]) -> list[str]:
    """L FG answers → L+1 texts: each with the class name appended if it lacks it, + the class."""
    name = lemmatise(class_name)
    out = []
    for raw in answers:
        a = lemmatise(raw)
        if not a:
            a = class_name
        elif not _contains(a, name) and not _contains(a, class_name.lower()):
            a = f"{a} {class_name}"
        out.append(wrap(a))
    out.append(wrap(class_name))
    return out


def bg_texts(class_name: str, answers: Iterable[str]) -> list[str]:
    """BG answers, lemmatised, class name removed, empty ones dropped, deduplicated in order."""
    names = {lemmatise(class_name), class_name.lower()}
    out: dict[str, None] = {}
    for raw in answers:
        a = lemmatise(raw)
        for n in sorted(names, key=len, reverse=True):
            a = re.sub(rf"(?<![a-z0-9]){re.escape(n)}(?![a-z0-9])", " ", a)
        a = " ".join(a.split())
        if a:
            out[wrap(a)] = None
    return list(out)


def question_sets(questions: str) -> tuple[str, ...]:
    """"fine,alias,object,scene" → the sets; "category" (or "") = none (no QAPE)."""
    sets = tuple(s.strip() for s in questions.split(",") if s.strip() and s.strip() != "category")
    return sets


def entry_texts(class_name: str, answers: Sequence[str], sets: Sequence[str],
                empty_bg: str = "none") -> tuple[list[str], list[str]]:
    """(FG texts, BG texts) of one (image, class) from the selected question sets.

    With no BG set selected, the BG text is "no {class}" (the paper's RITC-only baseline).
    When BG sets are selected but every answer was the class itself, `empty_bg="none"`
    gives no BG text (the reference's bg_vqa_tool.feats returns None and the pair is
    skipped, train_qa_clims.py:219-220); "no-class" gives "no {class}" instead.
    """
    kinds = [kind for kind, _ in TEMPLATES]
    fg = [a for a, kind in zip(answers, kinds, strict=True) if kind in sets and kind in FG_SETS]
    bg = [a for a, kind in zip(answers, kinds, strict=True) if kind in sets and kind in BG_SETS]
    fgt = fg_texts(class_name, fg)
    if not any(s in BG_SETS for s in sets):
        return fgt, [wrap(f"no {class_name}")]
    bgt = bg_texts(class_name, bg)
    if bgt or empty_bg == "none":
        return fgt, bgt
    return fgt, [wrap(f"no {class_name}")]  # every answer was the class itself


# ----------------------------------------------------------------------------- the corpus stage


def corpus_items(ds) -> list[tuple[int, int]]:
    """(image index, class index) of every present class of every image, in order."""
    import numpy as np

    return [(i, int(k)) for i in range(len(ds)) for k in np.nonzero(ds.labels(i))[0]]


def corpus_deps(ctx, answerer) -> dict:
    deps = {"data": ctx.data_key(), "answerer": answerer.key(), "templates": templates_hash(),
            "version": QAPE_VERSION}
    if ctx.cfg.dataset != "synth":  # the questions name the class in the run's wording
        deps["class_names"] = ctx.cfg.params.class_names
    return deps


def _read_shard(path: Path) -> dict[tuple[int, int], dict]:
    """Finished items of an interrupted build; a torn last line (killed mid-write) is ignored."""
    done: dict[tuple[int, int], dict] = {}
    if not path.exists():
        return done
    with open(path) as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and len(row.get("answers", ())) == len(TEMPLATES):
                done[(row["image"], row["class"])] = row
    return done


IMAGES_PER_CALL = 16  # images whose questions share one generate call (answerer.answer_many)


def build_corpus(ds, answerer, folder: Path, shard: Path, log=print,
                 show_progress: bool = True, names: tuple[str, ...] | None = None,
                 images_per_call: int = IMAGES_PER_CALL) -> dict:
    """Answer every pending item into `shard`, then write corpus.jsonl + meta.json to `folder`.

    Pending images go to the answerer `images_per_call` at a time; a chunk's rows are
    appended and fsynced as soon as its call returns, so a kill loses at most one chunk."""
    items = corpus_items(ds)
    done = _read_shard(shard)
    by_image: dict[int, list[int]] = {}
    for i, k in items:
        if (i, k) not in done:
            by_image.setdefault(i, []).append(k)
    pending = sum(len(v) for v in by_image.values())
    if done:
        log(f"qape: resuming, {len(items) - pending} of {len(items)} items already answered")
    shard.parent.mkdir(parents=True, exist_ok=True)
    if shard.exists() and shard.stat().st_size and not shard.read_bytes().endswith(b"\n"):
        with open(shard, "a") as fh:  # a torn last line: end it so appends start clean
            fh.write("\n")
    names = names or ds.class_names  # the words the questions use (RunContext.prompt_names)
    t0, asked = time.time(), 0
    pending_images = list(by_image.items())
    with open(shard, "a") as fh, progress_bar("qape", pending, enabled=show_progress) as advance:
        for c in range(0, len(pending_images), max(1, images_per_call)):
            chunk = pending_images[c:c + max(1, images_per_call)]
            # released answer files need no image (methods/vqa_released.py): none decoded
            calls = [(i, ds.image(i) if getattr(answerer, "needs_images", True) else None,
                      [(names[k], t) for k in ks for t in range(len(TEMPLATES))])
                     for i, ks in chunk]
            for (i, ks), answers in zip(chunk, answerer.answer_many(calls), strict=True):
                _append_rows(fh, done, i, ks, answers)
            fh.flush()
            os.fsync(fh.fileno())
            n_items = sum(len(ks) for _, ks in chunk)
            asked += n_items
            for _ in range(n_items):
                advance(items_per_s=asked / max(time.time() - t0, 1e-9))
    elapsed = time.time() - t0
    with open(folder / "corpus.jsonl", "w") as out:
        for i, k in items:
            row = done[(i, k)]
            fg, bg = entry_texts(names[k], row["answers"], (*FG_SETS, *BG_SETS))
            out.write(json.dumps({"image": i, "name": ds.image_names[i], "class": k,
                                  "class_name": names[k], "answers": row["answers"],
                                  "fg": fg, "bg": bg}) + "\n")
    meta = {"version": QAPE_VERSION, "templates": [list(t) for t in TEMPLATES],
            "answerer": answerer.key(), "items": len(items), "answered_this_build": asked,
            "seconds_this_build": round(elapsed, 2),
            "items_per_s": round(asked / elapsed, 2) if asked and elapsed > 0 else None}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    log(f"qape: {len(items)} items ({asked} answered now"
        + (f", {asked / elapsed:.1f} items/s" if asked and elapsed > 0 else "") + ")")
    return meta


def _append_rows(fh, done: dict, image: int, classes: list[int], answers: list[str]) -> None:
    """One shard row per (image, class): its 16 answers, in template order."""
    n_t = len(TEMPLATES)
    for j, k in enumerate(classes):
        row = {"image": image, "class": k, "answers": answers[j * n_t:(j + 1) * n_t]}
        fh.write(json.dumps(row) + "\n")
        done[(image, k)] = row


def qape_corpus(ctx, answerer=None) -> tuple[Path, str]:
    """The QAPE corpus of this run's training data: (stage folder, stage key), built once."""
    answerer = answerer or make_answerer(ctx)
    from harness.stages import StageSpec

    spec = StageSpec("qape", inputs=corpus_deps(ctx, answerer))  # the answerer holds its settings
    key = spec.key(ctx.cfg.params)
    shard = ctx.stages.partial_dir("qape", key) / "answers.jsonl"

    # fewer images per call bound the beam search's memory on a small GPU
    per_call = int(os.environ.get("BENCH_QAPE_IMAGES_PER_CALL", IMAGES_PER_CALL))

    def build(folder: Path) -> None:
        build_corpus(ctx.dataset("train"), answerer, folder, shard, log=ctx.log,
                     show_progress=ctx.show_progress, names=ctx.prompt_names(),
                     images_per_call=per_call)

    folder, key = ctx.stage(spec, build)
    if shard.exists():
        shard.unlink()
        try:
            shard.parent.rmdir()
        except OSError:
            pass
    return folder, key


def load_corpus(folder: Path) -> list[dict]:
    with open(Path(folder) / "corpus.jsonl") as fh:
        return [json.loads(line) for line in fh]


def make_answerer(ctx):
    """The answerer a run's config asks for (`vqa`: auto = synth on synth, BLIP elsewhere;
    --vqa-path naming QA-CLIMS's released answer files: those, methods/vqa_released.py).
    It lives here, beside its one caller, so that methods/vqa_released.py can read vqa's
    TEMPLATES without an import circle (lint-imports)."""
    p = ctx.params
    kind = p.vqa if p.vqa != "auto" else ("synth" if ctx.cfg.dataset == "synth" else "blip")
    if kind == "synth":
        ctx.teacher_info["vqa"] = {"kind": "synth", "random": False}
        return SynthAnswerer(ctx.dataset("train"), p.vqa_error_rate)
    from methods.vqa_released import ReleasedAnswers, is_released, released_files

    if ctx.cfg.vqa_path and is_released(ctx.cfg.vqa_path):  # QA-CLIMS's answer files, no model
        answerer = ReleasedAnswers(released_files(ctx.cfg.vqa_path, ctx.cfg.dataset),
                                   ctx.dataset("train"), ctx.cfg.dataset, ctx.prompt_names())
        ctx.teacher_info["vqa"] = answerer.provenance()
        return answerer
    if ctx.cfg.vqa_path:
        ctx.teacher_info["vqa"] = {"kind": "blip", "path": str(ctx.cfg.vqa_path), "random": False}
        return BlipAnswerer(ctx.cfg.vqa_path, ctx.device)
    if ctx.cfg.allow_random_weights:
        ctx.teacher_info["vqa"] = {"kind": "blip", "path": None, "random": True}
        ctx.log("qape: no --vqa-path, --allow-random-weights: a random-init BLIP VQA "
                "(capfilt-large shape); its answers are noise")
        words = (*(t for _, t in TEMPLATES), *ctx.dataset("train").class_names)
        return RandomBlipAnswerer(words, ctx.device)  # one per dataset, not per run seed
    raise BenchError("the BLIP answerer needs a local BLIP VQA folder: pass --vqa-path DIR "
                     "(or --allow-random-weights for smoke tests, or --vqa synth on synth)")
