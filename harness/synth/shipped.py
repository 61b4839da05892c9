"""The synth teacher of the default teacher seed, shipped with the package: every machine
shares one teacher, and a fresh machine's first run skips the one-off training (~100–180 s
on two cores, more than the run itself).

What ships (harness/synth/shipped/, package data): the trained tiny CLIP in fp16, its info
(gates and accuracies measured on the fp16 weights as they load) and a checksum manifest,
verified on every load. The token table is most of the model (49,408 × 64) but training
touches only the rows of the caption vocabulary: every other row is its initial value
times AdamW's weight decay over the schedule (its gradient and Adam moments stay 0), so
those rows are rebuilt from the teacher's seed instead of shipped (6.5 MB → under 1 MB).

Another teacher seed, synth spec or recipe has no shipped teacher and is trained here, as
before. Loading and writing live in harness/synth/teacher.py (`load_shipped`,
`write_shipped`): `bench data teacher --rebuild` trains the default one here and prints its
gates beside the shipped one's; `--rebuild --ship` makes these files from it (maintainers).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

SHIPPED_DIR = Path(__file__).with_name("shipped")
TOKENS = "token_embedding.weight"
ROWS = "token_embedding.rows"  # the shipped rows' indices


def shipped_paths(key_path: Path) -> tuple[Path, Path, Path]:
    """(weights, info, manifest) of the shipped teacher whose cache file would be `key_path`."""
    stem = key_path.stem
    return (SHIPPED_DIR / f"{stem}.fp16.pt", SHIPPED_DIR / f"{stem}.json",
            SHIPPED_DIR / f"{stem}.manifest.json")


def teacher_name(key_path: Path) -> str:
    """The teacher's name in stage keys: its cache stem, or for a shipped one the stem and its
    weights' sha256 (fp16 weights: stages trained against a teacher trained here differ)."""
    weights, _, manifest = shipped_paths(key_path)
    if not manifest.exists():
        return key_path.stem
    sha = json.loads(manifest.read_text())["files"][weights.name]["sha256"]
    return f"{key_path.stem}-shipped-{sha[:12]}"


def weight_decay_factor(lr: float, steps: int, weight_decay: float) -> float:
    """Π (1 − lr_t · wd) over the teacher's schedule (AdamW, OneCycleLR with pct_start 0.1,
    replayed): what AdamW does to a row it never gets a gradient for."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    factor = 1.0
    for _ in range(steps):
        factor *= 1 - opt.param_groups[0]["lr"] * weight_decay
        opt.step()
        sched.step()
    return factor


def pack(state: dict[str, torch.Tensor], rebuilt: torch.Tensor) -> dict[str, torch.Tensor]:
    """A trained state dict → the shipped form: fp16, the token table's rows that differ
    from `rebuilt` (the untouched rows as the seed and the decay make them) only."""
    tokens = state[TOKENS].float()
    scale = tokens.abs().max()
    trained = ((tokens - rebuilt).abs().amax(1) > 1e-5 * scale).nonzero().flatten()
    out = {k: v.half() for k, v in state.items() if k != TOKENS and v.is_floating_point()}
    out |= {k: v for k, v in state.items() if not v.is_floating_point()}
    out[TOKENS] = tokens[trained].half()
    out[ROWS] = trained.to(torch.int32)
    return out


def unpack(packed: dict[str, torch.Tensor], rebuilt: torch.Tensor) -> dict[str, torch.Tensor]:
    """The shipped form → a full fp32 state dict (rebuilt rows rounded to fp16 like the rest)."""
    tokens = rebuilt.half().float()
    tokens[packed[ROWS].long()] = packed[TOKENS].float()
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in packed.items()
             if k not in (TOKENS, ROWS)}
    state[TOKENS] = tokens
    return state
