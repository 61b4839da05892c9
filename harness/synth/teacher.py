"""The embedded teacher: a tiny open_clip CLIP trained contrastively on `synth`.

Training pairs are images and their captions: whole scenes ("a photo of boat on water."),
masked objects ("a photo of boat."), and contexts with the objects cut out ("a photo of
water."), every crop on the one neutral fill the methods use (harness/clip_ops.py), with
soft, dilated, dimmed and partly cut masks so that the crops the methods make are in
distribution, and an explicit empty negative (a blank image, "a photo of nothing.") so
that darkening or fading a mask is not a way to match a class. The loss is InfoNCE of
each image against the whole (deduplicated) caption vocabulary. The result is cached under
`<cache>/teachers/`, keyed by the synth spec and this file's settings, with its gate
figures (harness/synth/gates.py) beside it.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harness.clip_ops import empty_image, masked
from harness.compat import ensure_torchvision
from harness.errors import BenchError
from harness.progress import progress_bar
from harness.seeding import isolated_rng
from harness.synth import gates
from harness.synth.data import ALIASES, CLASSES, CONTEXTS, GENERATOR_VERSION, SUBTYPES, SynthSpec
from harness.synth.dataset import SynthDataset
from harness.teacher import Teacher
from harness.wording import photo_prompt


@dataclass(frozen=True)
class TinyClipSpec:
    embed_dim: int = 64
    vision_width: int = 64
    vision_layers: int = 2
    patch_size: int = 8
    text_width: int = 64
    text_layers: int = 2
    context_length: int = 40  # fits "SOT a photo of [30 prompt tokens] . EOT"
    steps: int = 600
    batch_size: int = 128
    lr: float = 2e-3
    n_images: int = 4000
    n_holdout: int = 300
    seed: int = 0
    scene_share: float = 0.5  # target mass of a scene's own caption; the rest on its concepts
    name_share: float = 0.5  # target mass of an object's class caption; the rest on its fine names
    # 2: neutral fill, dimmed and partial crops, the empty negative, the gates (docs/synth.md).
    # Part of the cache key, so a teacher of an older recipe is never loaded.
    recipe: int = 2


WEIGHT_DECAY = 0.05  # the teacher's AdamW weight decay (the shipped teacher replays it)


def build_tiny_clip(spec: TinyClipSpec, image_size: int):
    """A CLIP of open_clip's own architecture from a custom config, random weights."""
    ensure_torchvision()
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    vision = CLIPVisionCfg(layers=spec.vision_layers, width=spec.vision_width, head_width=32,
                           patch_size=spec.patch_size, image_size=image_size)
    text = CLIPTextCfg(context_length=spec.context_length, vocab_size=49408,
                       width=spec.text_width, heads=4, layers=spec.text_layers)
    model = CLIP(embed_dim=spec.embed_dim, vision_cfg=vision, text_cfg=text)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=spec.context_length)
    return model, tokenizer


NOTHING = photo_prompt("nothing")  # the caption of the empty negative
object_prompt = photo_prompt


def fine_name(name: str, class_name: str) -> str:
    """A sub-type or alias as QA-CLIMS's post-processing turns an FG answer: with the class
    name appended unless it already holds it ("sailboat" → "sailboat boat", "dairy cow")."""
    return name if class_name in name.split() else f"{name} {class_name}"


def fine_names(class_name: str, subtype: str | None = None) -> list[str]:
    """The FG names of an object: its own sub-type (or every sub-type), then the aliases."""
    subtypes = [subtype] if subtype else list(SUBTYPES[class_name])
    return [fine_name(n, class_name) for n in (*subtypes, *ALIASES[class_name])]


def captions() -> list[str]:
    """The caption vocabulary: objects, their sub-types and aliases, contexts, single scenes,
    pairs of objects."""
    caps = [object_prompt(c) for c in CLASSES] + [object_prompt(c) for c in CONTEXTS]
    caps += [object_prompt(n) for c in CLASSES for n in fine_names(c)]
    caps += [photo_prompt(f"{c} on {x}") for c in CLASSES for x in CONTEXTS]
    caps += [photo_prompt(f"{a} and {b}") for i, a in enumerate(CLASSES) for b in CLASSES[i + 1:]]
    return caps + [NOTHING]


class _Crops:
    """Builds (masked image, caption index) training items from a synth split."""

    def __init__(self, ds: SynthDataset):
        n = len(ds)
        self.images = torch.from_numpy(np.stack([ds.image(i) for i in range(n)])).permute(0, 3, 1, 2)
        self.masks = torch.from_numpy(np.stack([ds.mask(i) for i in range(n)])).long()
        self.ctx = torch.from_numpy(np.stack([ds.context_map(i) for i in range(n)])).long()
        self.scenes = ds.scenes
        self.cap_index = {c: i for i, c in enumerate(captions())}

    def image(self, i: int) -> torch.Tensor:
        return self.images[i].float() / 255

    def items(self, rng: np.random.Generator, count: int, soft: bool, scene_share: float = 1.0,
              name_share: float = 1.0):
        """A batch of crops and their caption targets, each a distribution over captions:
        a scene's own caption gets `scene_share`, an object's class caption `name_share`, and
        the rest is spread over what else they show (a scene's concepts, an object's names)."""
        imgs, targets = [], torch.zeros(count, len(self.cap_index))
        for j, i in enumerate(rng.integers(0, len(self.scenes), count)):
            img, (cap, related, kind) = self._one(int(i), rng, soft)
            imgs.append(img)
            share = {"scene": scene_share, "object": name_share}.get(kind, 1.0)
            targets[j, cap] = share if related else 1.0
            for c in related:
                targets[j, c] += (1 - share) / len(related)
        return torch.stack(imgs), targets

    def _one(self, i: int, rng: np.random.Generator, soft: bool):
        objs = self.scenes[i].objects
        kind = rng.choice(KINDS, p=KIND_P)
        obj = objs[rng.integers(len(objs))]
        if kind == "empty":
            return _empty_negative(rng, self.images.shape[-1]), (self.cap_index[NOTHING], [], kind)
        if kind == "scene":
            return self._scene(i, obj, rng)
        k = CLASSES.index(obj["class"]) + 1
        related: list[int] = []
        if kind == "object":
            keep = self.masks[i] == k
            cap = object_prompt(obj["class"])
            # QA-CLIMS's FG answers name sub-types and aliases; real CLIP knows such words,
            # so the tiny teacher learns them too (its own sub-type, not the other one).
            related = [self.cap_index[object_prompt(n)]
                       for n in fine_names(obj["class"], obj["subtype"])]
        elif kind == "context":
            keep = self.ctx[i] == CONTEXTS.index(obj["context"])
            cap = object_prompt(obj["context"])
        else:  # the image with the object cut out, clutter and all: a background crop
            keep = self.masks[i] != k
            cap = object_prompt(obj["context"])
        m = keep.float()[None, None]
        if kind == "object" and rng.random() < P_PARTIAL:
            m = cut_mask(m, float(rng.uniform(0.1, 0.4)), int(rng.integers(4)))
        if soft and rng.random() < 0.6:  # hard masks too, so shape alone must suffice
            m = _soften(m, rng, grow=kind == "object")
        m = m * _amplitude(rng)
        crop = masked(self.image(i)[None], m)[0]
        return (crop.flip(-1) if rng.random() < 0.5 else crop), (self.cap_index[cap], related, kind)

    def _scene(self, i: int, obj: dict, rng: np.random.Generator):
        names = [o["class"] for o in self.scenes[i].objects]
        cap = photo_prompt(f"{names[0]} on {obj['context']}" if len(names) == 1
                           else f"{names[0]} and {names[1]}")
        # As for real CLIP, a whole scene also matches "a photo of boat." and "a photo of
        # water.": without this share the teacher scores scenes *against* the bare class
        # prompt, and a mask still covering context gets no pull from -log sim(fg, t_k).
        shown = names if len(names) > 1 else [names[0], obj["context"]]
        concepts = [self.cap_index[object_prompt(c)] for c in shown]
        image = self.image(i)
        image = image.flip(-1) if rng.random() < 0.5 else image
        return image, (self.cap_index[cap], concepts, "scene")


# What the teacher trains on, and how often. "empty": the explicit negative, an image with
# nothing in it (the neutral fill, black, or any constant colour) captioned NOTHING, so
# that a mask of zeros, or a dark or washed-out crop, is not an object to the teacher.
KINDS = ("scene", "object", "context", "cutout", "empty")
KIND_P = (0.15, 0.43, 0.16, 0.18, 0.08)
P_PARTIAL = 0.35  # object masks with a side cut off: a CAM that misses part of the object
P_DIM = 0.5  # crops whose mask peaks well below 1, as a sigmoid or soft CAM gives


def _amplitude(rng: np.random.Generator) -> float:
    """The peak of a training mask: dimmed (0.3-0.85) half of the time, else near 1."""
    return float(rng.uniform(0.3, 0.85) if rng.random() < P_DIM else rng.uniform(0.85, 1.0))


def _empty_negative(rng: np.random.Generator, size: int) -> torch.Tensor:
    """The neutral fill (what a mask of zeros leaves), black, or a random constant colour."""
    pick = rng.random()
    if pick < 0.4:
        return empty_image(1, size)[0]
    colour = torch.zeros(3) if pick < 0.6 else torch.from_numpy(rng.random(3)).float()
    return colour.view(3, 1, 1).expand(3, size, size).clone()


def cut_mask(m: torch.Tensor, frac: float, side: int) -> torch.Tensor:
    """A partial mask: the object's mask with `frac` of its bounding box cut off one side
    (0 top, 1 bottom, 2 left, 3 right). m (1, 1, H, W)."""
    ys, xs = m[0, 0].nonzero(as_tuple=True)
    if not len(ys):
        return m
    lo, hi = (ys, ys) if side < 2 else (xs, xs)
    start, stop = int(lo.min()), int(hi.max()) + 1
    cut = int(round(frac * (stop - start)))
    out = m.clone()
    span = slice(start, start + cut) if side in (0, 2) else slice(stop - cut, stop)
    if side < 2:
        out[..., span, :] = 0
    else:
        out[..., :, span] = 0
    return out


def _soften(m: torch.Tensor, rng: np.random.Generator, grow: bool) -> torch.Tensor:
    """Dilate or erode by a few pixels, then blur: CAM-like soft masks."""
    r = int(rng.integers(0, 3))
    if r:
        m = F.max_pool2d(m if grow else 1 - m, 2 * r + 1, 1, r)
        m = m if grow else 1 - m
    return F.avg_pool2d(m, 3, 1, 1)


DIM_GATE_AMPLITUDE = 0.5  # the "dimmed" zero-shot: the GT mask at half strength
PARTIAL_GATE_CUT = 0.3  # the "partial" zero-shot: 30 % of the object's box cut off one side


def zero_shot(teacher: Teacher, crops: _Crops) -> dict[str, float]:
    """Accuracy (percent) on held-out hard-masked objects (classes, and sub-types among all
    twelve), the same objects dimmed and cut, and contexts; every crop on the neutral fill."""
    obj_feats = teacher.encode_text([object_prompt(c) for c in CLASSES])
    ctx_feats = teacher.encode_text([object_prompt(c) for c in CONTEXTS])
    subtypes = [(c, t) for c in CLASSES for t in SUBTYPES[c]]
    sub_feats = teacher.encode_text([object_prompt(fine_name(t, c)) for c, t in subtypes])
    hits = {key: [0, 0] for key in ("objects", "contexts", "subtypes", "objects_dim",
                                    "objects_partial")}
    with torch.no_grad():
        for i, scene in enumerate(crops.scenes):
            for j, o in enumerate(scene.objects):
                k = CLASSES.index(o["class"])
                obj = (crops.masks[i] == k + 1).float()[None, None]
                ctx = (crops.ctx[i] == CONTEXTS.index(o["context"])).float()[None, None]
                partial = cut_mask(obj, PARTIAL_GATE_CUT, (i + j) % 4)
                masks = torch.cat([obj, ctx, obj * DIM_GATE_AMPLITUDE, partial])
                f = teacher.encode_image(masked(crops.image(i)[None].expand(4, -1, -1, -1), masks))
                hits["objects"][0] += int((f[0] @ obj_feats.T).argmax() == k)
                hits["contexts"][0] += int((f[1] @ ctx_feats.T).argmax() == CONTEXTS.index(o["context"]))
                sub = subtypes.index((o["class"], o["subtype"]))
                hits["subtypes"][0] += int((f[0] @ sub_feats.T).argmax() == sub)
                hits["objects_dim"][0] += int((f[2] @ obj_feats.T).argmax() == k)
                hits["objects_partial"][0] += int((f[3] @ obj_feats.T).argmax() == k)
                for key in hits:
                    hits[key][1] += 1
    return {k: 100.0 * v[0] / v[1] for k, v in hits.items()}


def train_teacher(synth: SynthSpec, spec: TinyClipSpec, cache_dir: Path, pairs: gates.PairGates,
                  progress=None):
    """Train the tiny CLIP from `spec.seed` (the caller's random state is put back after) and
    measure its gates, `pairs` those the run asks for."""
    with isolated_rng():
        return _train_teacher(synth, spec, cache_dir, pairs, progress)


def _train_teacher(synth: SynthSpec, spec: TinyClipSpec, cache_dir: Path, pairs: gates.PairGates,
                   progress=None):
    torch.manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    model, tokenizer = build_tiny_clip(spec, synth.image_size)
    teacher = Teacher(model, tokenizer, name="synth-tiny-clip")
    model.requires_grad_(True).train()
    teacher_split = SynthSpec(**{**asdict(synth), "n_eval": spec.n_images})
    data = _Crops(SynthDataset(teacher_split, "teacher", cache_dir))
    tokens = tokenizer(captions())
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, spec.lr, total_steps=spec.steps, pct_start=0.1)
    for step in range(spec.steps):
        with single_threaded():
            images, targets = data.items(rng, spec.batch_size, soft=True,
                                         scene_share=spec.scene_share, name_share=spec.name_share)
        img = F.normalize(model.encode_image((images - teacher.mean) / teacher.std), dim=-1)
        txt = F.normalize(model.encode_text(tokens), dim=-1)
        loss = F.cross_entropy(model.logit_scale.exp().clamp(max=100) * img @ txt.T, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress(step + 1, spec.steps, loss.item())
    opt.zero_grad(set_to_none=True)  # a frozen teacher keeps no leftover weight gradients
    model.eval().requires_grad_(False)
    holdout = _Crops(SynthDataset(SynthSpec(**{**asdict(synth), "n_eval": spec.n_holdout}),
                                  "teacher_holdout", cache_dir))
    with single_threaded():
        return teacher, measure(teacher, holdout, pairs)


@contextmanager
def single_threaded():
    """Torch on one thread for per-item work on 64-px tensors: on a loaded 2-core machine
    the intra-op pool's hand-offs made one 3×3 blur take 28 ms (50× the serial time)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def measure(teacher: Teacher, holdout: _Crops, pairs: gates.PairGates) -> dict[str, float]:
    """Every figure the gates read (harness/synth/gates.py), on held-out images."""
    acc = {f"zero_shot_{k}": v for k, v in zero_shot(teacher, holdout).items()}
    margins = gates.blank_margins(teacher, NOTHING, [object_prompt(c) for c in CLASSES])
    cbs_gate = gates.cbs_gate_from(teacher, holdout, object_prompt)
    wins = gates.context_pair_wins(teacher, holdout, object_prompt, cbs_gate, pairs.losses)
    return {**acc, "blank_min_margin": float(margins.min()), "cbs_gate": cbs_gate,
            **{f"gt_wins_{k}": v for k, v in wins.items()}}


def teacher_path(synth: SynthSpec, spec: TinyClipSpec, cache_dir: Path) -> Path:
    import hashlib

    # The teacher sees its own split: only what shapes that split's images is in the key.
    used = {"image_size": synth.image_size, "p_cooccur": synth.p_cooccur, "seed": synth.seed}
    if GENERATOR_VERSION > 1:  # version-1 keys predate the field; later versions re-key
        used["generator"] = GENERATOR_VERSION
    key = hashlib.sha256(json.dumps([used, asdict(spec)], sort_keys=True).encode())
    return cache_dir / "teachers" / f"synth-{key.hexdigest()[:12]}.pt"


def load_or_train(synth: SynthSpec, cache_dir: Path, spec: TinyClipSpec | None = None,
                  progress=None, log=print, *, pairs: gates.PairGates,
                  shipped: bool = True) -> tuple[Teacher, dict]:
    """The shipped synth teacher where one ships for this spec (harness/synth/shipped.py;
    `shipped=False`: never), else the cached one, trained on first use (its pair gates:
    `pairs`, the run's families' context losses; they are not in its key). Returns
    (teacher, info).

    Its weights and info file are checked against the manifest written beside them when
    they were trained; anything that does not match is named in one warning line and the
    teacher is trained again (harness/artefacts.py)."""
    from harness.artefacts import check_manifest
    from harness.cache import file_lock

    spec = spec or TinyClipSpec()
    path = teacher_path(synth, spec, cache_dir)
    info_path, manifest = path.with_suffix(".json"), path.with_suffix(".manifest.json")
    found = load_shipped(path, synth, spec) if shipped else None
    if found is not None:  # the shipped one wins over any trained here: one teacher everywhere
        return found
    if path.exists() and check_manifest(manifest) is None:  # no lock: a read-only cache serves it
        info = json.loads(info_path.read_text())
        return _load_checked(path, synth, spec, info), info
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"cache folder {path.parent} is not writable ({exc.strerror})") from None
    with file_lock(path.with_suffix(".lock")):  # concurrent workers train it once
        if path.exists() or manifest.exists():
            damage = check_manifest(manifest)
            if damage is None:
                info = json.loads(info_path.read_text())
                return _load_checked(path, synth, spec, info), info
            log(f"warning: synth teacher {path.parent / damage.file} {damage.cause}; "
                "training the teacher again")
        for stale in path.parent.glob(f"{path.stem}.*.tmp"):  # the lock is ours: writers died
            stale.unlink(missing_ok=True)
        log(f"training the synth teacher (first use; cached at {path})")
        t0 = time.time()
        teacher, figures = train_teacher(synth, spec, cache_dir, pairs, progress)
        info = {"teacher": "synth-tiny-clip", "path": str(path), "train_s": time.time() - t0,
                **figures}
        info["gates"] = [dict(zip(("gate", "measured", "required", "passed"), row, strict=True))
                         for row in gate_rows(info, pairs)]  # the record beside the weights
        _store(teacher, info, path, info_path, manifest)
    # The teacher a run gets is the one every later run gets: re-read from disk. The trained
    # object's text cache (Teacher.encode_text) was filled by the gates on one thread, and
    # CPU reductions differ in the last bit with the thread count, so the first run's
    # numbers differed from every rerun's (issue 32).
    return _load_checked(path, synth, spec, info), info


def _store(teacher: Teacher, info: dict, path: Path, info_path: Path, manifest: Path) -> None:
    """The weights and info beside them, then their manifest; a failed write leaves no
    temporary file and is one line naming the file and the cause."""
    from harness.artefacts import write_manifest
    from harness.leftovers import owner_tag
    from harness.oserrors import is_write_failure, unwritable

    manifest.unlink(missing_ok=True)  # from here until the new one, it is unfinished
    tmp = path.with_suffix(f".{owner_tag()}.tmp")
    info_tmp = path.with_name(f"{info_path.name}.{owner_tag()}.tmp")
    try:
        torch.save(teacher.clip.state_dict(), tmp)
        info_tmp.write_text(json.dumps(info, indent=1))
        os.replace(info_tmp, info_path)
        os.replace(tmp, path)
        write_manifest(manifest, [path, info_path], teacher=path.stem)
    except BaseException as exc:  # an interrupt too: no temporary file stays
        tmp.unlink(missing_ok=True)
        info_tmp.unlink(missing_ok=True)
        if not is_write_failure(exc):
            raise
        raise unwritable("synth teacher", path, exc) from None


def _load_checked(path: Path, synth: SynthSpec, spec: TinyClipSpec, info: dict) -> Teacher:
    teacher = _load(path, synth, spec)
    teacher.cbs_gate = info.get("cbs_gate")
    return teacher


def rebuilt_tokens(spec: TinyClipSpec, image_size: int) -> torch.Tensor:
    """The token rows training never touches, as they end: the table training starts from
    (`spec.seed`'s first draws) times AdamW's weight decay over the schedule."""
    from harness.synth.shipped import TOKENS, weight_decay_factor

    with isolated_rng():
        torch.manual_seed(spec.seed)
        model, _ = build_tiny_clip(spec, image_size)
    return (model.state_dict()[TOKENS].detach().clone()
            * weight_decay_factor(spec.lr, spec.steps, WEIGHT_DECAY))


def load_shipped(key_path: Path, synth: SynthSpec, spec: TinyClipSpec
                 ) -> tuple[Teacher, dict] | None:
    """(teacher, info) of the shipped teacher for this key, verified by its manifest; None
    when none ships for it. A damaged shipped file is an install problem: one line."""
    from harness.artefacts import check_manifest, load_tensors
    from harness.synth.shipped import SHIPPED_DIR, shipped_paths, unpack

    weights, info_path, manifest = shipped_paths(key_path)
    if not manifest.exists():
        return None
    damage = check_manifest(manifest)
    if damage is not None:
        raise BenchError(f"the shipped synth teacher {SHIPPED_DIR / damage.file} {damage.cause}: "
                         "reinstall wsss-bench (or delete the file to train the teacher here)")
    model, tokenizer = build_tiny_clip(spec, synth.image_size)
    model.load_state_dict(unpack(load_tensors(weights, "shipped synth teacher"),
                                 rebuilt_tokens(spec, synth.image_size)))
    model.eval().requires_grad_(False)
    info = {**json.loads(info_path.read_text()), "path": str(weights)}
    teacher = Teacher(model, tokenizer, name="synth-tiny-clip")
    teacher.cbs_gate = info.get("cbs_gate")
    return teacher, info


def write_shipped(cache_dir: Path, pairs: gates.PairGates, log=print) -> Path:
    """Make the shipped files from the default teacher trained here (trained now if the
    cache has none): packed fp16 weights, the gates measured on them as they load, the
    manifest. A maintainer's step (`bench data teacher --rebuild --ship`), after a
    change of the teacher's recipe, spec or the synth generator."""
    from dataclasses import asdict

    from harness.artefacts import write_manifest
    from harness.synth.shipped import SHIPPED_DIR, pack, shipped_paths, unpack

    synth, spec = SynthSpec(), TinyClipSpec()
    _, trained_info = load_or_train(synth, cache_dir, spec, log=log, pairs=pairs, shipped=False)
    key_path = teacher_path(synth, spec, cache_dir)
    weights, info_path, manifest = shipped_paths(key_path)
    SHIPPED_DIR.mkdir(exist_ok=True)
    rebuilt = rebuilt_tokens(spec, synth.image_size)
    packed = pack(torch.load(key_path, weights_only=True), rebuilt)
    torch.save(packed, weights)
    model, tokenizer = build_tiny_clip(spec, synth.image_size)
    model.load_state_dict(unpack(packed, rebuilt))
    teacher = Teacher(model.eval().requires_grad_(False), tokenizer, name="synth-tiny-clip")
    holdout = _Crops(SynthDataset(SynthSpec(**{**asdict(synth), "n_eval": spec.n_holdout}),
                                  "teacher_holdout", cache_dir))
    with single_threaded():
        figures = measure(teacher, holdout, pairs)
    info = {"teacher": "synth-tiny-clip", "shipped": True, "precision": "fp16",
            "train_s": trained_info.get("train_s"), **figures}
    info["gates"] = [dict(zip(("gate", "measured", "required", "passed"), row, strict=True))
                     for row in gate_rows(info, pairs)]
    info_path.write_text(json.dumps(info, indent=1))
    write_manifest(manifest, [weights, info_path], teacher=key_path.stem)
    log(f"wrote {weights} ({weights.stat().st_size} bytes), {info_path.name}, {manifest.name}")
    return weights


def load_synth_teacher(data_spec: SynthSpec, clip_spec: TinyClipSpec, cache_dir: Path,
                       log: Callable[[str], None] = print, show_progress: bool = True, *,
                       pairs: gates.PairGates) -> tuple[Teacher, dict[str, Any]]:
    """A run's teacher on synth: the embedded tiny CLIP for this spec (trained on first use,
    then cached); fails in one line when any of its gates fails."""
    with progress_bar("synth teacher", clip_spec.steps, enabled=show_progress) as advance:
        teacher, info = load_or_train(data_spec, cache_dir, clip_spec, log=log, pairs=pairs,
                                      progress=lambda s, n, loss: advance(loss=loss))
    check_gate(info, pairs)  # one line and exit != 0 when any gate fails
    log(f"synth teacher passes its gates; zero-shot: {accuracy_line(info)}; "
        f"CBS gate {info['cbs_gate']:.3f}")
    return teacher, info


def untrained_synth_teacher(data_spec: SynthSpec, clip_spec: TinyClipSpec
                            ) -> tuple[Teacher, dict[str, Any]]:
    """The embedded tiny CLIP's architecture, untrained (harness/plan.py: nothing trains)."""
    return _untrained(clip_spec, data_spec.image_size), {"teacher": "untrained"}


@functools.lru_cache(maxsize=4)  # a plan per setting: build the tokenizer once
def _untrained(clip_spec: TinyClipSpec, image_size: int) -> Teacher:
    model, tokenizer = build_tiny_clip(clip_spec, image_size)
    return Teacher(model, tokenizer, name="synth-tiny-clip (untrained)")


def _load(path: Path, synth: SynthSpec, spec: TinyClipSpec) -> Teacher:
    from harness.artefacts import load_tensors

    model, tokenizer = build_tiny_clip(spec, synth.image_size)
    model.load_state_dict(load_tensors(path, "cached synth teacher"))
    return Teacher(model, tokenizer, name="synth-tiny-clip")


def accuracy_line(info: dict) -> str:
    """"objects 97.9%, contexts 100.0%, dimmed 95.0%, partial 93.1%, sub-types 78.3%"
    (sub-types are reported, not gated: twelve look-alike pairs, e.g. sedan/truck, at 64 px)."""
    names = {"objects": "objects", "contexts": "contexts", "objects_dim": "dimmed",
             "objects_partial": "partial", "subtypes": "sub-types"}
    return ", ".join(f"{word} {info[f'zero_shot_{key}']:.1f}%" for key, word in names.items()
                     if f"zero_shot_{key}" in info)


def gate_rows(info: dict, pairs: gates.PairGates) -> list[tuple[str, str, str, bool]]:
    """(gate, measured, required, passed) for every gate, as `bench data teacher` prints them;
    a pair gate not enforced (not in `pairs.enforced`) says so in `required`."""
    nan = float("nan")  # a record without a figure fails that gate (nan compares false)

    def row(gate: str, key: str, fmt: str, required: str, limit: float, strict: bool = False):
        value = float(info.get(key, nan))
        return gate, format(value, fmt), required, value > limit if strict else value >= limit

    rows = [row(f"zero-shot {key.replace('_', ' ')}", f"zero_shot_{key}", ".1f",
                f">= {gates.ACCURACY_GATE:.0f}%", gates.ACCURACY_GATE)
            for key in gates.ZERO_SHOT_GATED]
    rows.append(row("blank image: sim(nothing) - max sim(class)", "blank_min_margin", "+.3f",
                    "> 0 for every blank", 0.0, strict=True))
    rows += [row(f"GT beats GT + co-occurring context, L_{name}", f"gt_wins_{name}", ".1f",
                 f">= {gates.PAIR_GATE:.0f}% of pairs"
                 + ("" if name in pairs.enforced else "; not enforced yet"), gates.PAIR_GATE)
             for name in gates.pair_loss_names(info, pairs)]
    return rows


def check_gate(info: dict, pairs: gates.PairGates) -> None:
    """Refuse a teacher that fails any gate (harness/synth/gates.py), in one line."""
    gates.check(info, pairs)
