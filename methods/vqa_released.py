"""QA-CLIMS's released VQA answers (`voc_vqa_fg_blip.npy`, `voc_vqa_bg_blip.npy`, and the
`coco_` pair) as the answerer of the QAPE corpus: no VQA model runs, the corpus stage is
built from the files and keyed by their sha256.

The released layout (CVI-SZU/QA-CLIMS third_party/BLIP/get_blip_vqa_results.py,
`vqa_all_img_bg_main`, which writes them; net/vqa_fg.py `FG_VQA._preproccess_qa` and
net/vqa_bg.py `BG_VQA._process_vqa`, which read them): `np.save` of one dict

    {image name: {class name: {"vqa": [(question template, raw answer), ...],
                                "answers": [lemmatised answer, ...]}}}

- image names are the dataset's file stems ("2007_000032", "COCO_train2014_000000000009");
  for VOC the script walks voc12/cls_labels.npy, i.e. train_aug, every present class;
- class names are misc/cat_names.py `category_dict` (the VOC names with spaces: "dining
  table", "potted plant", "tv monitor"; COCO's category names), this harness's `voc` wording
  (harness/wording.py);
- the questions are the unformatted templates (`{}` for the class), 6 FG ones in the fg file
  and 10 BG ones in the bg file (visual_questions.py `QUESTIONS`), in that order, but the
  readers look each one up by its text, and so does this module;
- "answers" are "vqa"'s answers through nltk's WordNetLemmatizer. The harness's corpus keeps
  raw answers and post-processes them itself (methods/qape.py), so the raw "vqa" answers are
  what is imported: one post-processing for BLIP's answers and for the released ones.

Question texts match the 16 QAPE templates (methods/vqa.py TEMPLATES) ignoring case; the
release spells "What environment is the {} in?" where TEMPLATES keeps the paper's
"enviroment": the same question.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.artefacts import file_sha256
from harness.errors import BenchError
from harness.wording import prompt_class_names
from methods.vqa import TEMPLATES

LAYOUT = ("np.save of {image name: {class name: {'vqa': [(question, answer), ...], "
          "'answers': [...]}}} (QA-CLIMS's voc_vqa_fg_blip.npy / voc_vqa_bg_blip.npy)")
# the release's spellings that differ from TEMPLATES' beyond case (visual_questions.py)
RELEASE_SPELLINGS = {"what environment is the {} in?": "what enviroment is the {} in?"}


def _norm(question: str) -> str:
    q = " ".join(question.lower().split())
    return RELEASE_SPELLINGS.get(q, q)


TEMPLATE_OF = {_norm(text): t for t, (_, text) in enumerate(TEMPLATES)}


def is_released(path: str | Path) -> bool:
    """Whether `path` names released answer files (a .npy, or a folder of them) rather than a
    BLIP folder (which has a config.json)."""
    path = Path(path)
    if path.is_dir():
        return not (path / "config.json").exists() and any(path.glob("*_vqa_*_blip.npy"))
    return path.suffix == ".npy"


def released_files(path: str | Path, dataset: str) -> list[Path]:
    """The answer files `path` names: a folder holding `{dataset}_vqa_fg_blip.npy` and
    `{dataset}_vqa_bg_blip.npy` (the release's vqa/ folder), or one such file, with its
    `_fg_`/`_bg_` sibling beside it when there is one."""
    path = Path(path)
    if path.is_dir():
        files = [path / f"{dataset}_vqa_{kind}_blip.npy" for kind in ("fg", "bg")]
        found = [f for f in files if f.is_file()]
        if not found:
            raise BenchError(f"{path} holds neither {files[0].name} nor {files[1].name} "
                             "(QA-CLIMS's released VQA answers)")
        return found
    if not path.is_file():
        raise BenchError(f"released VQA answer file {path} does not exist")
    for a, b in (("_vqa_fg_", "_vqa_bg_"), ("_vqa_bg_", "_vqa_fg_")):
        if a in path.name and (path.parent / path.name.replace(a, b)).is_file():
            return sorted([path, path.parent / path.name.replace(a, b)], key=lambda p: b in p.name)
    return [path]


def read_answers(path: Path) -> dict[str, dict[str, dict[int, str]]]:
    """{image: {class name: {template index: raw answer}}} of one released file; a file of
    another layout is one line naming what was expected."""
    try:
        data = np.load(path, allow_pickle=True)  # the release's np.save of a dict (a pickle)
    except Exception as exc:  # noqa: BLE001 - not a .npy at all: one line naming the file
        raise BenchError(f"cannot read {path} as a .npy file ({type(exc).__name__}); expected "
                         f"{LAYOUT}") from None
    if not (isinstance(data, np.ndarray) and data.dtype == object and data.shape == ()):
        found = f"an array of shape {data.shape}, dtype {data.dtype}" if isinstance(data, np.ndarray) \
            else type(data).__name__
        raise BenchError(f"{path} holds {found}, not QA-CLIMS's VQA answers: expected {LAYOUT}")
    data = data.item()
    out: dict[str, dict[str, dict[int, str]]] = {}
    for image, classes in data.items() if isinstance(data, dict) else [(None, None)]:
        if not isinstance(classes, dict):
            raise BenchError(f"{path}: {'the file' if image is None else repr(image)} is not "
                             f"{{class name: {{'vqa': ...}}}}; expected {LAYOUT}")
        out[str(image)] = {str(c): _entry_answers(path, image, c, e) for c, e in classes.items()}
    if not out:
        raise BenchError(f"{path} holds no image; expected {LAYOUT}")
    return out


def _entry_answers(path: Path, image, cls, entry) -> dict[int, str]:
    pairs = entry.get("vqa") if isinstance(entry, dict) else None
    if not isinstance(pairs, (list, tuple)) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
        raise BenchError(f"{path}: {image!r} / {cls!r} has no 'vqa' list of (question, answer); "
                         f"expected {LAYOUT}")
    answers = {}
    for question, answer in pairs:
        q = _norm(str(question))
        t = TEMPLATE_OF.get(q, TEMPLATE_OF.get(q.replace(str(cls).lower(), "{}", 1)))
        if t is None:
            raise BenchError(f"{path} asks {question!r}, none of the 16 QAPE questions "
                             "(methods/vqa.py TEMPLATES)")
        answers[t] = str(answer)
    return answers


class ReleasedAnswers:
    """The QAPE answerer that reads the released files (the corpus stage's `answerer`).

    It checks, up front, that the files answer all 16 questions for every (train image,
    present class) of this run's data, and answers `methods.qape.build_corpus`'s calls from
    them (`needs_images = False`: no image is decoded)."""

    needs_images = False

    def __init__(self, files: list[Path], ds, dataset: str, names: tuple[str, ...]):
        self.files = [Path(f).resolve() for f in files]
        self.sha256 = [file_sha256(f) for f in self.files]
        self.names = tuple(names)  # the run's words for the classes (what build_corpus asks)
        release_names = prompt_class_names(dataset, ds.class_names, "voc")  # category_dict's
        tables = [read_answers(f) for f in self.files]
        self.answers: dict[tuple[int, int], list[str]] = {}
        items = [(i, int(k)) for i in range(len(ds)) for k in np.nonzero(ds.labels(i))[0]]
        for table, f in zip(tables, self.files, strict=True):
            _check_covers(table, f, items, ds.image_names, release_names, ds.class_names)
        for i, k in items:
            merged: dict[int, str] = {}
            for table in tables:
                classes = table[ds.image_names[i]]
                merged.update(classes.get(release_names[k]) or classes[ds.class_names[k]])
            missing = [t for t in range(len(TEMPLATES)) if t not in merged]
            if missing:
                q = TEMPLATES[missing[0]][1]
                raise BenchError(
                    f"the released VQA answers {', '.join(f.name for f in self.files)} hold "
                    f"{len(TEMPLATES) - len(missing)} of the 16 QAPE questions for "
                    f"{ds.image_names[i]} / {release_names[k]} (first missing: {q!r}); pass the "
                    f"folder holding both {dataset}_vqa_fg_blip.npy and {dataset}_vqa_bg_blip.npy")
            self.answers[(i, k)] = [merged[t] for t in range(len(TEMPLATES))]

    def key(self) -> dict:
        return {"kind": "released", "sha256": sorted(self.sha256)}

    def provenance(self) -> dict:
        return {"kind": "released", "random": False, "path": ", ".join(map(str, self.files)),
                "files": {str(f): s for f, s in zip(self.files, self.sha256, strict=True)}}

    def answer_many(self, items: list[tuple[int, object, list[tuple[str, int]]]]) -> list[list[str]]:
        index = {n: k for k, n in enumerate(self.names)}
        return [[self.answers[(i, index[name])][t] for name, t in asks] for i, _, asks in items]


def _check_covers(table: dict, path: Path, items: list[tuple[int, int]], image_names,
                  release_names, class_names) -> None:
    """Every train image with a class, and every present class of it, is in `table`."""
    images = list(dict.fromkeys(image_names[i] for i, _ in items))
    lacking = [n for n in images if n not in table]
    if lacking:
        raise BenchError(f"{path} lacks {len(lacking)} of the {len(images)} train images with a "
                         f"class (first: {lacking[0]}): the file is not of this data")
    pairs = [(image_names[i], release_names[k]) for i, k in items
             if release_names[k] not in table[image_names[i]]
             and class_names[k] not in table[image_names[i]]]
    if pairs:
        raise BenchError(f"{path} lacks {len(pairs)} of the {len(items)} (train image, present "
                         f"class) pairs (first: {pairs[0][0]} / {pairs[0][1]})")
