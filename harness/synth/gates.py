"""The gates the embedded synth teacher must pass before any method may use it.

Fixed in advance (docs/synth.md), from what a real CLIP does, never from what makes a method win:

- zero-shot ≥ 90 % on held-out objects, contexts, objects whose mask is dimmed to 0.5, and
  objects with 30 % of their box cut off: real CLIP still names a faded or partly hidden
  object, so a method must not be able to score by fading or trimming the mask;
- every blank image (black, white, the neutral fill, constant colours) is closer to
  "a photo of nothing." than to any class prompt: real CLIP does not see a bird in a black
  image (the first teacher gave black 0.69 with "bird"), so a method must not be able to
  score by darkening;
- on ≥ 90 % of held-out (image, class) pairs whose object sits on its co-occurring context,
  the ground-truth mask scores a lower loss than the ground-truth mask plus that context,
  under SemPLeS's L_match and L_refine and the CLIMS loss: with real CLIP, removing the
  co-occurring context from a mask is what these losses reward (their whole point), so a
  teacher on which it is not rewarded cannot tell the methods apart.

The CBS gate. CLIMS applies L_CBS only where sim(foreground, background prompt) > 0.26, a
threshold on real CLIP ViT-B/32's similarity scale. The rule, stated before any method ran:
on the teacher's scale the gate is the 95th percentile of the similarities between held-out
ground-truth object crops and the background (context) prompts, so it fires on ≤ 5 % of
correct object crops. It is computed at build time, stored in the teacher's json and
exposed as `Teacher.cbs_gate` (None for real CLIP, which keeps 0.26).

The losses are the methods' own: each family declares, through `Method.context_losses()`,
the losses that should reward removing a co-occurring context (SemPLeS's L_match and
L_refine, the CLIMS loss), at its paper's VOC settings, and which of them a teacher must pass
(`Method.enforced_context_losses`). The run hands them to the teacher's build as a
`PairGates` (harness.registry.context_gates collects every installed family's), which
measures each one (one formula, in the method that trains with it): this package names no
family and no loss. The
stand-in for SemPLeS's learned background prompt u^b is the co-occurring context's text
prompt: what the learned prompt is trained to describe (stage b pulls u^b towards v^b).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from harness.clip_ops import empty_image, fg_bg
from harness.errors import BenchError
from harness.synth.data import CLASSES, CONTEXTS, COOCCUR

ACCURACY_GATE = 90.0  # percent, every zero-shot gate
PAIR_GATE = 90.0  # percent of held-out pairs where the GT mask beats GT + co-occurring context
CBS_PERCENTILE = 95.0  # the CBS gate fires on at most 5 % of correct object crops
ZERO_SHOT_GATED = ("objects", "contexts", "objects_dim", "objects_partial")


@dataclass(frozen=True)
class ContextPair:
    """One held-out object on its co-occurring context, as a method's loss sees its pairs:
    row 0 is the ground-truth mask, row 1 the mask plus the context band (`row(j)`: one)."""

    vf: torch.Tensor  # (R, D) foreground crop features
    vb: torch.Tensor  # (R, D) background crop features
    uf: torch.Tensor  # (R, D) the class's text prompt
    ub: torch.Tensor  # (R, D) the context's text prompt (SemPLeS's learned u^b stand-in)
    bg_texts: torch.Tensor  # (B, D) every context's text prompt (CLIMS's background prompts)
    masks: torch.Tensor  # (R, 1, H, W)
    cbs_gate: float  # this teacher's L_CBS gate

    def row(self, j: int) -> ContextPair:
        def one(t: torch.Tensor) -> torch.Tensor:
            return t[j : j + 1]

        return ContextPair(one(self.vf), one(self.vb), one(self.uf), one(self.ub), self.bg_texts,
                           one(self.masks), self.cbs_gate)


# a method's loss of ONE row of a ContextPair, a scalar (Method.context_losses)
ContextLoss = Callable[[ContextPair], torch.Tensor]


@dataclass(frozen=True)
class PairGates:
    """The pair gates a run asks of its teacher: name → loss (measured, stored, printed), and
    the names a teacher must pass (the others are shown "not enforced yet")."""

    losses: Mapping[str, ContextLoss] = field(default_factory=dict)
    enforced: tuple[str, ...] = ()


def blank_images(size: int) -> torch.Tensor:
    """Images with nothing in them: black, white, the neutral fill, five constant colours."""
    colours = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5], [0.8, 0.2, 0.2],
                            [0.2, 0.6, 0.2], [0.2, 0.3, 0.8], [0.9, 0.8, 0.2], [0.3, 0.2, 0.1]])
    flat = colours.view(-1, 3, 1, 1).expand(-1, 3, size, size)
    return torch.cat([flat, empty_image(1, size)])


def blank_margins(teacher, nothing_text: str, class_texts: list[str]) -> torch.Tensor:
    """sim(blank, "nothing") − max over classes of sim(blank, class), one per blank image."""
    with torch.no_grad():
        f = teacher.encode_image(blank_images(teacher.image_size)).float()
    return margins(f, teacher.encode_text([nothing_text])[0].float(),
                   teacher.encode_text(class_texts).float())


def margins(feats: torch.Tensor, nothing: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Per row of feats (N, D): cos(row, nothing (D,)) − max_k cos(row, classes (K, D))."""
    return feats @ nothing - (feats @ classes.T).max(1).values


def percentile_gate(sims: torch.Tensor) -> float:
    """The CBS gate from GT-crop vs background-prompt similarities: their 95th percentile."""
    return float(np.percentile(sims.flatten().numpy(), CBS_PERCENTILE))


def win_rate(gt: torch.Tensor, with_context: torch.Tensor) -> float:
    """Percent of pairs where the GT mask's loss is strictly below GT + context's."""
    return 100.0 * float((gt < with_context).float().mean()) if len(gt) else 0.0


def pair_loss_names(info: dict, pairs: PairGates) -> list[str]:
    """The losses a teacher record has pair-gate figures for, in the record's order, then
    any asked-for one it lacks (shown as failed)."""
    recorded = [k.removeprefix("gt_wins_") for k in info if k.startswith("gt_wins_")]
    return list(dict.fromkeys([*recorded, *pairs.enforced, *pairs.losses]))


def cooccurring_pairs(crops) -> list[tuple[int, int, int]]:
    """(image, class index, context index) of held-out objects on their co-occurring context."""
    return [(i, CLASSES.index(o["class"]), CONTEXTS.index(o["context"]))
            for i, scene in enumerate(crops.scenes) for o in scene.objects
            if o["context"] == COOCCUR[o["class"]]]


def cbs_gate_from(teacher, crops, prompt) -> float:
    """The rule above: the 95th percentile of sim(GT object crop, background prompt)."""
    bg = teacher.encode_text([prompt(c) for c in CONTEXTS]).float()
    sims = []
    with torch.no_grad():
        for i, k, _ in cooccurring_pairs(crops):
            m = (crops.masks[i] == k + 1).float()[None, None]
            vf = teacher.encode_image(fg_bg(crops.image(i)[None], m, bg=False)).float()
            sims.append((vf @ bg.T)[0])
    return percentile_gate(torch.cat(sims))


def context_pair_wins(teacher, crops, prompt, cbs_gate: float,
                      losses: Mapping[str, ContextLoss]) -> dict[str, float]:
    """Per loss, percent of held-out co-occurring pairs where the GT mask's loss is below
    the loss of the GT mask plus the object's co-occurring context band."""
    bg = teacher.encode_text([prompt(c) for c in CONTEXTS]).float()
    cls = teacher.encode_text([prompt(c) for c in CLASSES]).float()
    rows: dict[str, list[torch.Tensor]] = {name: [] for name in losses}
    with torch.no_grad():
        for i, k, c in cooccurring_pairs(crops):
            gt = (crops.masks[i] == k + 1).float()
            both = torch.stack([gt, ((crops.ctx[i] == c) | (gt > 0)).float()])[:, None]
            x = crops.image(i)[None].expand(2, -1, -1, -1)
            feats = teacher.encode_image(fg_bg(x, both)).float()
            pair = ContextPair(feats[:2], feats[2:], cls[[k, k]], bg[[c, c]], bg, both, cbs_gate)
            for name, loss in losses.items():
                rows[name].append(torch.stack([loss(pair.row(0)), loss(pair.row(1))]))
    pairs = {name: torch.stack(r) if r else torch.zeros(0, 2) for name, r in rows.items()}
    return {name: win_rate(v[:, 0], v[:, 1]) for name, v in pairs.items()}


def failures(info: dict, pairs: PairGates) -> list[str]:
    """Each failed gate, in words; empty when the teacher passes."""
    out = [f"zero-shot {key} {info[f'zero_shot_{key}']:.1f}% < {ACCURACY_GATE:.0f}%"
           for key in ZERO_SHOT_GATED if info[f"zero_shot_{key}"] < ACCURACY_GATE]
    if info["blank_min_margin"] <= 0:
        out.append(f"a blank image is closer to a class than to 'nothing' "
                   f"(margin {info['blank_min_margin']:+.3f})")
    out += [f"GT beats GT + co-occurring context under L_{name} on {info[f'gt_wins_{name}']:.1f}%"
            f" of pairs < {PAIR_GATE:.0f}%" for name in pairs.enforced
            if info[f"gt_wins_{name}"] < PAIR_GATE]
    return out


def check(info: dict, pairs: PairGates) -> None:
    """Refuse a teacher that fails a gate, in one line."""
    measured = pair_loss_names(info, pairs)  # a family's loss added since: rebuilt
    missing = [k for k in ("blank_min_margin", *(f"gt_wins_{n}" for n in measured)) if k not in info]
    if missing:
        raise BenchError(f"synth teacher {info.get('path', '')} has no gate record ({missing[0]}); "
                         "delete it and it is rebuilt with its gates on the next run")
    bad = failures(info, pairs)
    if bad:
        raise BenchError(f"synth teacher fails its gates: {'; '.join(bad)}; "
                         "methods trained on it would mean nothing")
