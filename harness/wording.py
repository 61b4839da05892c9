"""Class wording in every prompt and VQA question on real data: `class_names=voc|clims`.

`voc`: the VOC/COCO names as both reference codes write them in prompts, with spaces
("dining table", "potted plant", "tv monitor"; CVI-SZU/QA-CLIMS misc/cat_names.py).
`clims`: the same, except that person is "player", exactly as CVI-SZU/CLIMS clip_utils.py
`category_dict` has it for VOC and COCO, so runs can reproduce the CLIMS code's prompts.
synth's names are single words and the same under both. Both renames are the reference
codes' and stay VOC's and COCO's: any other dataset (a folder of the user's, a plugin) has its
class names as declared, an underscore read as a space ("hard_exudate" → "hard exudate").
"""

from __future__ import annotations

from collections.abc import Sequence

# Every fixed text a CLIP sees is "a photo of {words}.": class and background prompts, QAPE's
# answers, the synth teacher's captions; learned prompts sit after the same prefix
# (harness.teacher.Teacher.encode_prompts).
PROMPT_PREFIX = "a photo of"
WORDINGS = ("voc", "clims")  # the choices of the `class_names` setting
SPACED = {"diningtable": "dining table", "pottedplant": "potted plant", "tvmonitor": "tv monitor"}
CLIMS_ONLY = {"person": "player"}
REFERENCE_WORDED = ("voc", "coco")  # the datasets the reference codes' renames are for


def photo_prompt(words: str) -> str:
    """The prompt template: `a photo of {words}.`"""
    return f"{PROMPT_PREFIX} {words}."


def prompt_class_names(dataset: str, names: Sequence[str], wording: str = "voc") -> tuple[str, ...]:
    """The words that stand for each class in prompts and questions."""
    if dataset not in REFERENCE_WORDED:
        return tuple(n.replace("_", " ") for n in names)
    renames = {**SPACED, **(CLIMS_ONLY if wording == "clims" else {})}
    return tuple(renames.get(n, n) for n in names)
