"""Class wording (`class_names=voc|clims`) in prompts, stage keys and provenance."""

from pathlib import Path

import pytest

from harness.config import MethodConfig, RunConfig
from harness.data.voc import CLASSES
from harness.errors import BenchError
from harness.method import RunContext
from harness.wording import prompt_class_names


def test_voc_and_clims_wording():
    voc = prompt_class_names("voc", CLASSES, "voc")
    clims = prompt_class_names("voc", CLASSES, "clims")
    person = CLASSES.index("person")
    assert voc[person] == "person" and clims[person] == "player"  # CLIMS clip_utils.py
    for words in (voc, clims):  # both reference codes write these with spaces
        assert words[CLASSES.index("diningtable")] == "dining table"
        assert words[CLASSES.index("tvmonitor")] == "tv monitor"
    assert [a for a, b in zip(voc, clims, strict=True) if a != b] == ["person"]
    assert prompt_class_names("coco", ("person", "dining table"), "clims") == ("player", "dining table")
    assert prompt_class_names("synth", ("boat",), "clims") == ("boat",)


def test_wording_is_a_validated_setting_and_keys_prompt_stages():
    with pytest.raises(BenchError, match="class_names must be one of voc, clims"):
        MethodConfig(class_names="coco").validate()

    def ctx(wording):
        cfg = RunConfig("clims", "clims", "voc", 0, "cpu", MethodConfig(class_names=wording))
        return RunContext(cfg, Path("/nonexistent"), device=None)

    assert ctx("voc").teacher_key() != ctx("clims").teacher_key()
    assert ctx("clims").teacher_key()["class_names"] == "clims"


def test_run_context_prompt_names_on_a_voc_tree(tmp_path):
    from tests.fixtures_real import make_voc

    root = make_voc(tmp_path / "voc")
    cfg = RunConfig("clims", "clims", "voc", 0, "cpu", MethodConfig(class_names="clims"),
                    data_root=str(root))
    names = RunContext(cfg, tmp_path / "cache", device=None).prompt_names()
    assert names[CLASSES.index("person")] == "player" and len(names) == 20
