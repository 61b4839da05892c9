"""`qa-clims`: Question-Answer CLIMS (RITC training on the QAPE corpus).

P = σ(W_kᵀZ) (sigmoid CAM), foreground adaptive thresholding (FAT) θ_k = ω·max P_k,
R^f = P·b, R^b = (1−P)·(1−b); v^f = E_I(X·R^f), v^b = E_I(X·R^b). Texts come from the
cached QAPE corpus (`methods.qape`) and are encoded once per run into padded, masked
tensors; all foreground and background crops of a batch go through the frozen image
encoder in one call, and the losses are vectorised over positive pairs.

L = α·Σ_pairs L_FRC + β·Σ_pairs L_BRC + γ·L_REG. Training starts from the cached CAM
classifier.

Normalisations, as the reference code (CVI-SZU/QA-CLIMS): the contrastive losses are
SUMMED over the batch's positive pairs, not averaged (step/train_qa_clims.py accumulates
`L_FRC = L_FRC + NCELoss(...)` per pair; L_REG is a mean); the FG text feature is
t̄^f = 0.5·t_class + 0.5·mean(FG answer features), of unit-norm parts but NOT
renormalised, and s is its dot product with the unit image feature (net/vqa_fg.py
FG_VQA.forward, label_weight_init 0.5; clip_loss.py normalises only the image feature).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from harness.clip_ops import masked
from harness.config import hp
from harness.data.augment import flipped
from harness.errors import BenchError
from harness.generator import CamNet
from harness.generator_stage import StageOptim, Trainable, load_module, train_generator_stage
from harness.method import Method, RunContext
from harness.registry import register_method
from harness.stages import StageSpec
from methods.cam.method import CamConfig
from methods.qa_clims.paper import PAPER
from methods.vqa import QUESTION_SETS

ALL_QUESTIONS = "fine,alias,object,scene"


@dataclass(frozen=True)
class QAClimsConfig(CamConfig):
    alpha: float = hp(10.0, "QA-CLIMS weight of L_FRC (foreground region contrast)", ge=0)
    beta: float = hp(8.0, "QA-CLIMS weight of L_BRC (background region contrast)", ge=0)
    gamma: float = hp(0.2, "QA-CLIMS weight of L_REG (area regularisation)", ge=0)
    omega: float = hp(0.1, "QA-CLIMS FAT filter ratio: θ_k = ω·max P_k", ge=0, le=1)
    tau: float = hp(0.7, "QA-CLIMS contrastive temperature", gt=0)
    fat: bool = hp(True, "foreground adaptive thresholding (off: R^f = P, R^b = 1 − P)")
    brc_form: str = hp("reference", "L_BRC form: reference (every exponent /τ, mean of exp over "
                       "BG texts) or paper (Eq. 8 as printed)", choices=("reference", "paper"))
    questions: str = hp(ALL_QUESTIONS, "question sets: comma list of fine, alias, object, scene; "
                        "'category' = none (class name vs 'no {class}')")
    vqa: str = hp("auto", "QAPE answerer (auto: synth on synth, BLIP elsewhere)",
                  choices=("auto", "synth", "blip"))
    vqa_error_rate: float = hp(0.1, "synth answerer: probability of a wrong answer", ge=0, le=1)
    loss_replicas: int = hp(1, "data-parallel replicas the reference averages gradients over: "
                            "the summed L_FRC and L_BRC are divided by it (QA-CLIMS: DDP on 2 "
                            "GPUs x 4 images = 2)", ge=1)
    bg_less_pairs: str = hp("skip", "a pair whose BG answers were all removed: skip it in L_FRC "
                            "and L_BRC as the reference (train_qa_clims.py:219-220), or give it "
                            "'a photo of no {class}.' (ours before)", choices=("skip", "no-class"))
    clip_encoder: str = hp("plain", "region encoder: mask-adapted (E_I(X·P) with OVSeg's mask "
                           "prompts where b = 0, the paper's on voc/coco) or plain (E_I(X·P·b))",
                           choices=("mask-adapted", "plain"))

    def teacher_mask_prompts(self) -> bool:
        """Whether the real teacher needs OVSeg's mask prompts (harness/mask_clip.py)."""
        return self.clip_encoder == "mask-adapted"

    def optimisation(self) -> dict[str, Any]:
        return {**super().optimisation(), "loss_replicas": self.loss_replicas}

    def validate(self) -> QAClimsConfig:
        super().validate()
        for s in self.questions.split(","):
            s = s.strip()
            if s and s != "category" and s not in QUESTION_SETS:
                raise BenchError(f"questions: unknown question set {s!r}; use a comma list of "
                                 f"{', '.join(QUESTION_SETS)}, or 'category'")
        if self.alpha == self.beta == 0:
            raise BenchError("alpha and beta are both 0: no contrastive loss is left to train")
        return self


# ----------------------------------------------------------------------------- losses


def fat_mask(p: torch.Tensor, omega: float) -> torch.Tensor:
    """The FAT mask b = [p ≥ ω·max p] of maps p (M, H, W), detached."""
    theta = omega * p.detach().amax(dim=(-2, -1), keepdim=True)
    return (p.detach() >= theta).to(p.dtype)


def fat_regions(p: torch.Tensor, omega: float,
                fat: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground adaptive thresholding of maps p (M, H, W) in [0, 1] → (R^f, R^b)."""
    if not fat:
        return p, 1 - p
    b = fat_mask(p, omega)
    return p * b, (1 - p) * (1 - b)


def region_features(teacher, x: torch.Tensor, pk: torch.Tensor, p: QAClimsConfig) -> torch.Tensor:
    """[v^f; v^b] of images x (M, 3, H, W) under their maps pk (M, H, W), in one call.

    plain: E_I(X·R^f), E_I(X·R^b) (R from `fat_regions`). mask-adapted, the reference's
    default (step/train_qa_clims.py:188-191, 206-208 `encode_image(x, m=mask)`): the image
    is X·P (X·(1−P)) and the FAT mask b (1−b) says which patches become OVSeg's mask prompts
    (harness/mask_clip.py); without FAT both masks are all ones: no patch is prompted. Every
    product is on the neutral fill (harness.clip_ops), as the reference masks the
    normalised image.
    """
    if p.clip_encoder == "plain":
        rf, rb = fat_regions(pk, p.omega, p.fat)
        return teacher.encode_image(torch.cat([masked(x, rf), masked(x, rb)]))
    b = fat_mask(pk, p.omega) if p.fat else torch.ones_like(pk)
    masks = torch.cat([b, 1 - b] if p.fat else [b, b])
    return teacher.encode_image_masked(torch.cat([masked(x, pk), masked(x, 1 - pk)]),
                                       masks.unsqueeze(1))


def frc_loss(vf: torch.Tensor, tf: torch.Tensor, tb: torch.Tensor, mask: torch.Tensor,
             tau: float) -> torch.Tensor:
    """L_FRC per pair (Eq. 6): −log e^{s_ff/τ} / (e^{s_ff/τ} + Σ_n e^{s_fb,n/τ}).

    vf (M, D), tf (M, D) t̄^f (not renormalised), tb (M, N, D) BG text features, mask (M, N);
    s = ⟨v/‖v‖, t⟩ as the reference.
    """
    vf = F.normalize(vf, dim=-1)
    s_ff = (vf * tf).sum(-1) / tau
    s_fb = torch.einsum("md,mnd->mn", vf, tb) / tau
    s_fb = s_fb.masked_fill(~mask, float("-inf"))
    return torch.logsumexp(torch.cat([s_ff[:, None], s_fb], 1), 1) - s_ff


def brc_loss(vb: torch.Tensor, tf: torch.Tensor, tb: torch.Tensor, mask: torch.Tensor,
             tau: float, form: str = "reference") -> torch.Tensor:
    """L_BRC per pair (Eq. 8).

    Default `reference` (the public QA-CLIMS code, whose numbers the paper reports): every
    exponent is divided by τ and the BG term is the mean of exp(s_bb,n/τ) over BG texts,
    −log m / (e^{s_bf/τ} + m), m = mean_n e^{s_bb,n/τ}. The paper's printed Eq. 8 drops the
    /τ on the s_bf term (most likely a typo, it is inconsistent with Eq. 6) and uses the
    mean similarity inside one exponent: −log e^{s̄_bb/τ} / (e^{s_bf} + e^{s̄_bb/τ});
    `form="paper"` selects it, as written.
    """
    vb = F.normalize(vb, dim=-1)
    s_bf = (vb * tf).sum(-1)
    s_bb = torch.einsum("md,mnd->mn", vb, tb)
    n = mask.sum(1).clamp(min=1)
    if form == "paper":
        s_bb_mean = (s_bb * mask).sum(1) / n / tau
        return torch.logaddexp(s_bf, s_bb_mean) - s_bb_mean
    log_m = torch.logsumexp((s_bb / tau).masked_fill(~mask, float("-inf")), 1) - n.log()
    return torch.logaddexp(s_bf / tau, log_m) - log_m


# ----------------------------------------------------------------------------- text features


def fg_text_feature(feats: torch.Tensor, fg_idx: torch.Tensor,
                    fg_mask: torch.Tensor) -> torch.Tensor:
    """t̄^f = 0.5·t_class + 0.5·mean(answer features), not renormalised (net/vqa_fg.py).

    Each row's FG texts are its L answers then the bare class (`qape.fg_texts`); with no
    FG answer (no fine/alias questions) t̄^f is the class feature alone.
    """
    n = fg_mask.sum(1)  # L + 1
    rows = torch.arange(len(fg_idx), device=fg_idx.device)
    t_class = feats[fg_idx[rows, n - 1]]
    answers = feats[fg_idx] * fg_mask[..., None]
    answers[rows, n - 1] = 0  # the class text is not an answer
    mean_answers = answers.sum(1) / (n - 1).clamp(min=1)[:, None]
    return torch.where((n > 1)[:, None], 0.5 * t_class + 0.5 * mean_answers, t_class)


class CorpusTexts:
    """The corpus's texts encoded once: per (image, class) row, mean FG feature + BG features.

    `row_of[image, class]` → row (−1 where absent); `fg` (R, D) t̄^f (`fg_text_feature`);
    `bg_idx` (R, N) indices into `feats` (T, D) with `bg_mask` (R, N).
    """

    def __init__(self, corpus: list[dict], questions: str, teacher, n_images: int, n_classes: int,
                 device: torch.device, class_names: tuple[str, ...], bg_less_pairs: str = "skip"):
        from methods.qape import entry_texts, question_sets

        sets = question_sets(questions)
        rows = [entry_texts(class_names[e["class"]], e["answers"], sets,
                            empty_bg="none" if bg_less_pairs == "skip" else "no-class")
                for e in corpus]
        vocab = list(dict.fromkeys(t for fg, bg in rows for t in (*fg, *bg)))
        index = {t: i for i, t in enumerate(vocab)}
        feats = torch.cat([teacher.encode_text(vocab[i:i + 512])
                           for i in range(0, len(vocab), 512)])
        self.feats = feats.to(device)
        self.vocab = vocab
        n_fg = max(len(fg) for fg, _ in rows)
        n_bg = max(1, max(len(bg) for _, bg in rows))  # a row may have none: skipped
        fg_idx = torch.zeros(len(rows), n_fg, dtype=torch.long)
        fg_mask = torch.zeros(len(rows), n_fg, dtype=torch.bool)
        bg_idx = torch.zeros(len(rows), n_bg, dtype=torch.long)
        bg_mask = torch.zeros(len(rows), n_bg, dtype=torch.bool)
        for r, (fg, bg) in enumerate(rows):
            fg_idx[r, :len(fg)] = torch.tensor([index[t] for t in fg])
            fg_mask[r, :len(fg)] = True
            bg_idx[r, :len(bg)] = torch.tensor([index[t] for t in bg])
            bg_mask[r, :len(bg)] = True
        self.fg = fg_text_feature(self.feats, fg_idx.to(device), fg_mask.to(device))
        self.bg_idx, self.bg_mask = bg_idx.to(device), bg_mask.to(device)
        self.row_of = torch.full((n_images, n_classes), -1, dtype=torch.long)
        for r, e in enumerate(corpus):
            self.row_of[e["image"], e["class"]] = r
        self.row_of = self.row_of.to(device)

    def __call__(self, images: torch.Tensor, classes: torch.Tensor):
        rows = self.row_of[images, classes]
        if (rows < 0).any():
            raise BenchError("a positive pair has no QAPE corpus entry: the corpus does not "
                             "match this training data (rebuild it with `bench qape`)")
        return self.fg[rows], self.feats[self.bg_idx[rows]], self.bg_mask[rows]


def ritc_loss(model: CamNet, teacher, texts: CorpusTexts, p: QAClimsConfig, batch: dict):
    """L = α·ΣL_FRC + β·ΣL_BRC + γ·L_REG over the batch's pairs, at the reference's scale.

    The sums are over one replica's batch and divided by `loss_replicas` (DDP averages the
    replicas' gradients); a pair with no BG text is skipped as train_qa_clims.py:219-220
    skips it (`if bg_vqa_feat is None: continue`), so it adds nothing to either sum.
    """
    images, labels = flipped(batch), batch["labels"]
    maps = torch.sigmoid(model.maps(images))  # P = σ(W_kᵀZ)
    up = F.interpolate(maps, size=images.shape[-2:], mode="bilinear",
                       align_corners=p.align_corners)  # train_qa_clims.py:176: True
    b_idx, k_idx = labels.nonzero(as_tuple=True)  # every positive pair, vectorised
    x = images[b_idx]
    m = len(b_idx)
    feats = region_features(teacher, x, up[b_idx, k_idx], p)
    vf, vb = feats[:m].float(), feats[m:].float()
    tf, tb, mask = texts(batch["index"][b_idx], k_idx)
    keep = mask.any(1)  # pairs with at least one BG text; the others are skipped
    vf, vb, tf, tb, mask = vf[keep], vb[keep], tf[keep], tb[keep], mask[keep]
    parts = {}
    loss = maps.new_zeros(())
    if p.alpha:
        parts["frc"] = frc_loss(vf, tf, tb, mask, p.tau).sum() / p.loss_replicas
        loss = loss + p.alpha * parts["frc"]
    if p.beta:
        parts["brc"] = brc_loss(vb, tf, tb, mask, p.tau, p.brc_form).sum() / p.loss_replicas
        loss = loss + p.beta * parts["brc"]
    parts["reg"] = maps.mean()
    if p.gamma:
        loss = loss + p.gamma * parts["reg"]
    return loss, parts


# ----------------------------------------------------------------------------- the method


# what the RITC stage reads: its optimisation (the generator's), the batch (the loader's),
# the corpus texts it is given (questions, bg_less_pairs) and the loss (RITC's weights, FAT,
# τ, the scale)
QA_CLIMS_OPTIM = StageOptim()
QA_CLIMS_STAGE_SETTINGS = ("batch_size", "questions", "bg_less_pairs", "alpha", "beta", "gamma",
                           "omega", "tau", "fat", "brc_form", "loss_replicas", "align_corners",
                           "clip_encoder")


@register_method
class QAClims(Method):
    """QA-CLIMS: RITC contrast against the QAPE corpus (FRC + BRC + REG, FAT, all questions)."""

    name = "qa-clims"
    paper = PAPER
    config_cls = QAClimsConfig
    epoch_fields = {"cam": "cam_epochs", "qa-clims": "epochs"}

    @classmethod
    def teacher_mask_prompts(cls, params: QAClimsConfig) -> bool:
        return params.teacher_mask_prompts()

    def train(self, ctx: RunContext) -> CamNet:
        from methods.cam.method import trained_cam
        from methods.qape import load_corpus, qape_corpus

        p = ctx.params
        corpus_dir, corpus_key = qape_corpus(ctx)
        model, cam_key = trained_cam(ctx)
        teacher = ctx.teacher
        ds = ctx.dataset("train")
        texts = CorpusTexts(load_corpus(corpus_dir), p.questions, teacher, len(ds),
                            len(ds.class_names), ctx.device, ctx.prompt_names(), p.bg_less_pairs)
        ctx.log(f"qa-clims: {len(texts.vocab)} distinct texts encoded once "
                f"(questions: {p.questions})")
        spec = StageSpec("qa-clims", settings=QA_CLIMS_STAGE_SETTINGS,
                         inputs={"data": ctx.data_key(), "cam": cam_key, "corpus": corpus_key,
                                 "seed": ctx.cfg.seed, "teacher": ctx.teacher_key()})

        def setup(_) -> Trainable:
            p = ctx.params  # the settings the stage declares
            return Trainable({"generator": model},
                             lambda batch: ritc_loss(model, teacher, texts, p, batch))

        folder, _ = train_generator_stage(ctx, spec, QA_CLIMS_OPTIM, setup)
        return load_module(ctx, folder, model).eval()
