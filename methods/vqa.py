"""VQA answerers for the QAPE corpus: BLIP (real data) and the synth answerer.

Both answer the QA-CLIMS question templates (paper Appendix, Table 6) for one image at a
time: `answer(index, image, asks)` with `asks` a list of (class name, template index), and
return the raw answer strings, which `methods.qape` post-processes the same way for both.

BLIP: the reference code calls `generate` once per question at batch 1 and re-encodes the
image every time. Here `answer_many` takes several images at once: they go through the
vision tower in one batch, each once, and all of their questions (every present class ×
every template of every image) are decoded in one batched beam search, each question
attending to its own image and to its own tokens only (the padding of shorter questions
is masked out), so the answers are those of one call per question.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from harness.errors import BenchError

# Paper Appendix Table 6, verbatim, `{}` = the class name. Order is part of the corpus format.
TEMPLATES: tuple[tuple[str, str], ...] = (
    # BG, surrounding objects
    ("object", "What is above the {}?"),
    ("object", "What is under the {}?"),
    ("object", "What is behind the {}?"),
    ("object", "What is around the {}?"),
    ("object", "What is next to the {}?"),
    ("object", "What is the left side of {}?"),
    ("object", "What is the right side of {}?"),
    # BG, scene
    ("scene", "What scene is the {} in?"),
    ("scene", "What enviroment is the {} in?"),  # sic: the paper's (and reference's) typo, kept
    ("scene", "What place is the {} in?"),
    # FG, fine-grained names
    ("fine", "What kind of {} is in the photo?"),
    ("fine", "What type of {} is in the photo?"),
    # FG, object aliases
    ("alias", "What is this {} also called?"),
    ("alias", "What is this {} usually called?"),
    ("alias", "What is another word for this {}?"),
    ("alias", "What is another name for this {}?"),
)
BG_SETS = ("object", "scene")
FG_SETS = ("fine", "alias")
QUESTION_SETS = (*FG_SETS, *BG_SETS)


def templates_hash() -> str:
    return hashlib.sha256(json.dumps(TEMPLATES).encode()).hexdigest()[:12]


def question(cls_name: str, template: int) -> str:
    return TEMPLATES[template][1].format(cls_name)


class BlipAnswerer:
    """transformers' BlipForQuestionAnswering + BlipProcessor from a local folder."""

    def __init__(self, path: str | Path, device: torch.device | str = "cpu", num_beams: int = 3,
                 max_length: int = 10, batched: bool = True):
        path = Path(path)
        if not (path / "config.json").is_file():
            raise BenchError(f"--vqa-path {path} is not a BLIP VQA folder (no config.json); "
                             "save one with BlipForQuestionAnswering.save_pretrained + "
                             "BlipProcessor.save_pretrained")
        self.path, self.device = path.resolve(), torch.device(device)
        self._model = self._processor = None  # loaded on first use: a cache hit never loads BLIP
        self.num_beams, self.max_length, self.batched = num_beams, max_length, batched
        self.generate_calls = 0
        self.questions_asked = 0

    def _load(self) -> None:
        from harness.compat import ensure_torchvision

        ensure_torchvision()
        from transformers import BlipForQuestionAnswering, BlipProcessor

        try:
            self._processor = BlipProcessor.from_pretrained(str(self.path), local_files_only=True)
            model = BlipForQuestionAnswering.from_pretrained(str(self.path), local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign folder: one line naming it
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise BenchError(f"--vqa-path {self.path}: cannot load BLIP VQA from it "
                             f"({type(exc).__name__}: {reason})") from None
        self._model = model.to(self.device).eval()

    @property
    def model(self):
        if self._model is None:
            self._load()
        return self._model

    @property
    def processor(self):
        if self._processor is None:
            self._load()
        return self._processor

    def key(self) -> dict:
        config = (self.path / "config.json").read_bytes()
        weights = sorted(p.name + str(p.stat().st_size) for p in self.path.glob("*.safetensors"))
        return {"kind": "blip", "path": str(self.path), "num_beams": self.num_beams,
                "max_length": self.max_length,
                "model": hashlib.sha256(config + "".join(weights).encode()).hexdigest()[:12]}

    @torch.no_grad()
    def pixel_values(self, image: np.ndarray) -> torch.Tensor:
        from PIL import Image

        out = self.processor(images=Image.fromarray(image), return_tensors="pt")
        return out["pixel_values"].to(self.device)

    @torch.no_grad()
    def answer(self, index: int, image: np.ndarray, asks: list[tuple[str, int]]) -> list[str]:
        return self.answer_many([(index, image, asks)])[0]

    @torch.no_grad()
    def answer_many(self, items: list[tuple[int, np.ndarray, list[tuple[str, int]]]]
                    ) -> list[list[str]]:
        """Answers of several (index, image, asks) items, one generate call for all of them."""
        questions = [[question(c, t) for c, t in asks] for _, _, asks in items]
        self.questions_asked += sum(len(q) for q in questions)
        if not self.batched:
            return [[self._one(self.pixel_values(image), q) for q in qs]
                    for (_, image, _), qs in zip(items, questions, strict=True)]
        from PIL import Image

        images = [Image.fromarray(image) for _, image, _ in items]
        pv = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        owner = torch.tensor([i for i, qs in enumerate(questions) for _ in qs], device=self.device)
        flat = self._batched(pv, [q for qs in questions for q in qs], owner)
        out, start = [], 0
        for qs in questions:
            out.append(flat[start:start + len(qs)])
            start += len(qs)
        return out

    def _gen_kwargs(self) -> dict:
        return {"num_beams": self.num_beams, "max_length": self.max_length, "min_length": 1}

    def _one(self, pv: torch.Tensor, q: str) -> str:
        """The reference's way: one generate call per question, image re-encoded."""
        tok = self.processor.tokenizer([q], return_tensors="pt").to(self.device)
        self.generate_calls += 1
        out = self.model.generate(input_ids=tok["input_ids"], pixel_values=pv,
                                  attention_mask=tok["attention_mask"], **self._gen_kwargs())
        return self.processor.tokenizer.decode(out[0], skip_special_tokens=True).strip()

    def _batched(self, pv: torch.Tensor, questions: list[str], owner: torch.Tensor) -> list[str]:
        """Questions of several images in one beam search; `owner[q]` = row of `pv` it asks."""
        m = self.model
        tok = self.processor.tokenizer(questions, padding=True, return_tensors="pt").to(self.device)
        n = len(questions)
        image_embeds = m.vision_model(pixel_values=pv)[0]  # each image encoded once
        image_embeds = image_embeds[owner]
        image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
        q_embeds = m.text_encoder(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"],
                                  encoder_hidden_states=image_embeds,
                                  encoder_attention_mask=image_mask, return_dict=False)[0]
        bos = torch.full((n, 1), m.decoder_start_token_id, device=self.device)
        self.generate_calls += 1
        out = m.text_decoder.generate(input_ids=bos, eos_token_id=m.config.text_config.sep_token_id,
                                      pad_token_id=m.config.text_config.pad_token_id,
                                      encoder_hidden_states=q_embeds,
                                      encoder_attention_mask=tok["attention_mask"],
                                      **self._gen_kwargs())
        texts = self.processor.tokenizer.batch_decode(out, skip_special_tokens=True)
        return [s.strip() for s in texts]


class RandomBlipAnswerer(BlipAnswerer):
    """A randomly initialised BLIP VQA of the real architecture, for --allow-random-weights.

    transformers' `BlipConfig()` defaults are Salesforce/blip-vqa-capfilt-large's shape (ViT-B
    vision tower at 384 px, 12-layer BERT encoder and decoder, 30,524 tokens), so this is the
    reference answerer's compute and memory with no file and no download. Its tokenizer is
    a WordPiece vocabulary written here (the templates' words and the class names), laid out
    at bert-base-uncased's special-token ids ([PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102,
    [MASK] 103) and BLIP's ([DEC] 30522, [ENC] 30523), padded with [unused] tokens to the
    config's vocabulary size. Its answers are noise: a smoke test of the real path only.
    """

    def __init__(self, words: tuple[str, ...], device: torch.device | str = "cpu", seed: int = 0,
                 num_beams: int = 3, max_length: int = 10, batched: bool = True):
        self.path, self.device, self.seed = None, torch.device(device), seed
        self.words = tuple(sorted({w for text in words for w in _words(text)}))
        self._model = self._processor = None
        self.num_beams, self.max_length, self.batched = num_beams, max_length, batched
        self.generate_calls = 0
        self.questions_asked = 0

    def _load(self) -> None:
        self._processor, model = random_blip(self.words, self.seed)
        self._model = model.to(self.device).eval()

    def _gen_kwargs(self) -> dict:
        # answers drawn from the written words only (the [unused] padding never decodes)
        vocab = self.processor.tokenizer.vocab
        unused = [i for t, i in vocab.items() if t.startswith("[unused")]
        return {**super()._gen_kwargs(), "suppress_tokens": unused}

    def key(self) -> dict:
        vocab = hashlib.sha256(json.dumps(self.words).encode()).hexdigest()[:12]
        return {"kind": "blip-random", "config": "BlipConfig()", "seed": self.seed,
                "vocab": vocab, "num_beams": self.num_beams, "max_length": self.max_length}


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"[a-z]+|[?.]", text.lower())


def blip_vocab(words: tuple[str, ...], size: int) -> dict[str, int]:
    """A WordPiece vocabulary of `size` with bert-base-uncased's and BLIP's special ids."""
    tokens = ["[PAD]", *(f"[unused{i}]" for i in range(99)), "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [w for w in words if w not in tokens]
    tokens += [f"[unused{i}]" for i in range(99, 99 + size - 2 - len(tokens))]
    tokens += ["[DEC]", "[ENC]"]
    return {t: i for i, t in enumerate(tokens)}


def random_blip(words: tuple[str, ...], seed: int = 0):
    """(BlipProcessor, BlipForQuestionAnswering) at BlipConfig's default shape, random init."""
    from harness.compat import ensure_torchvision

    ensure_torchvision()
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForQuestionAnswering,
        BlipImageProcessor,
        BlipProcessor,
    )

    config = BlipConfig()
    vocab = blip_vocab(words, config.text_config.vocab_size)
    tok = BertTokenizer(vocab=vocab, do_lower_case=True, bos_token="[DEC]")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BlipForQuestionAnswering(config)
    size = config.vision_config.image_size
    return BlipProcessor(BlipImageProcessor(size={"height": size, "width": size}), tok), model


class SynthAnswerer:
    """Answers the templates from a synth scene record, with a configurable error rate.

    Surrounding-object questions look at the scene next to the object's box (another
    object there → its class; else the majority context, or "clutter"); scene questions
    answer the object's context; fine-grained questions its sub-type; alias questions one
    of its aliases. With probability `error_rate` (drawn deterministically from the image,
    class and template) the answer is a wrong one from the same kind of vocabulary.
    """

    MARGIN = 4  # pixels beside the box that "above", "left side of", ... look at

    def __init__(self, ds, error_rate: float = 0.1, seed: int = 0):
        from harness.synth.data import ALIASES, CLASSES, CONTEXTS, SUBTYPES

        if not hasattr(ds, "scenes"):
            raise BenchError("the synth answerer needs a synth dataset (scene records); "
                             "use --vqa blip --vqa-path DIR on real data")
        self.ds, self.error_rate, self.seed = ds, float(error_rate), seed
        self.classes, self.contexts = CLASSES, CONTEXTS
        self.subtypes, self.aliases = SUBTYPES, ALIASES
        self.questions_asked = 0
        self.generate_calls = 0

    def key(self) -> dict:
        return {"kind": "synth", "error_rate": self.error_rate, "seed": self.seed, "version": 1}

    def answer(self, index: int, image: np.ndarray, asks: list[tuple[str, int]]) -> list[str]:
        self.questions_asked += len(asks)
        self.generate_calls += 1
        return [self._answer(index, c, t) for c, t in asks]

    def answer_many(self, items: list[tuple[int, np.ndarray, list[tuple[str, int]]]]
                    ) -> list[list[str]]:
        return [self.answer(index, image, asks) for index, image, asks in items]

    def _answer(self, index: int, cls: str, t: int) -> str:
        scene = self.ds.scenes[index]
        obj = next(o for o in scene.objects if o["class"] == cls)
        kind = TEMPLATES[t][0]
        if kind == "fine":
            truth = obj["subtype"]
        elif kind == "alias":
            names = self.aliases[cls]
            truth = names[(t - 12) % len(names)]
        elif kind == "scene":
            truth = obj["context"]
        else:
            truth = self._surrounding(index, obj, t, scene)
        rng = np.random.default_rng([self.seed, index, self.classes.index(cls), t])
        if rng.random() >= self.error_rate:
            return truth
        if kind in FG_SETS:
            pool = [n for c in self.classes if c != cls
                    for n in (*self.subtypes[c], *self.aliases[c])]
        else:
            pool = [*self.contexts, "clutter", *self.classes]
        pool = [p for p in pool if p != truth]
        return pool[int(rng.integers(len(pool)))]

    def _surrounding(self, index: int, obj: dict, t: int, scene) -> str:
        y0, x0, y1, x1 = obj["box"]
        ctx = self.ds.context_map(index)
        h, w = ctx.shape
        m = self.MARGIN
        others = [o for o in scene.objects if o is not obj]
        cx = (x0 + x1) / 2
        if t == 4 and others:  # next to
            return others[0]["class"]
        if t in (5, 6) and others:  # left / right side: the other object if it is on that side
            ox = (others[0]["box"][1] + others[0]["box"][3]) / 2
            if (t == 5 and ox < cx) or (t == 6 and ox > cx):
                return others[0]["class"]
        regions = {0: (slice(max(0, y0 - m), y0), slice(x0, x1)),
                   1: (slice(y1, min(h, y1 + m)), slice(x0, x1)),
                   5: (slice(y0, y1), slice(max(0, x0 - m), x0)),
                   6: (slice(y0, y1), slice(x1, min(w, x1 + m)))}
        ring = ctx[max(0, y0 - m):min(h, y1 + m), max(0, x0 - m):min(w, x1 + m)]
        region = ctx[regions[t]] if t in regions else ring
        if region.size == 0:
            region = ring
        # behind / around / next to: the context; above, under, sides: clutter counts too
        values = region[region != -1] if t in (2, 3, 4) else region.ravel()
        if values.size == 0:
            values = ring.ravel()
        vals, counts = np.unique(values, return_counts=True)
        best = int(vals[np.argmax(counts)])
        return "clutter" if best < 0 else self.contexts[best]

