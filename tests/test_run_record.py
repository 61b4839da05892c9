"""The result record: typed fields, unknown fields kept, older schemas migrated on read."""

from __future__ import annotations

import json

import pytest

from harness.record import SCHEMA_VERSION, RecordError, RunRecord
from harness.store import ResultsStore

V1 = {"schema_version": 1, "run_id": "r1", "method": "cam", "variant": "cam", "dataset": "synth",
      "seed": 3, "status": "ok", "hparams": {}, "config": {"params": {"teacher_seed": 1}},
      "seed_miou": 42.5, "oracle_seed_miou": 60.0, "git_rev": "abc"}


def test_a_schema_1_record_reads_as_the_current_schema():
    rec = RunRecord.from_dict(V1)
    assert SCHEMA_VERSION == 2 and rec.schema_version == 2 and rec.package_version is None
    assert (rec.seed, rec.seed_miou, rec.git_rev) == (3, 42.5, "abc")
    assert rec.metric("oracle_seed_miou") == 60.0 and rec.metric("mask_miou") is None
    assert rec.params() == {"teacher_seed": 1}
    # written back: every field kept, the unknown ones as they were
    assert rec.to_dict() == {**V1, "schema_version": 2, **{k: v for k, v in RunRecord(
        ).to_dict().items() if k not in V1}}


def test_a_record_without_schema_version_is_schema_1():
    assert RunRecord.from_dict({k: v for k, v in V1.items() if k != "schema_version"}
                               ).package_version is None


@pytest.mark.parametrize("data, why", [
    ({**V1, "seed": "3"}, "its seed is a str"),
    ({**V1, "seed_miou": True}, "its seed_miou is a bool"),
    ({**V1, "hparams": []}, "its hparams is a list"),
    ({**V1, "schema_version": 3}, "schema 3, newer than this version's 2"),
    ([V1], "a JSON list, not a record object"),
])
def test_what_is_not_a_record_says_why(data, why):
    with pytest.raises(RecordError, match=why):
        RunRecord.from_dict(data)


def test_the_store_reads_old_records_and_skips_bad_ones(tmp_path):
    for name, data in (("old", V1), ("bad", {**V1, "seed": "x"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps(data))
    store = ResultsStore(tmp_path, warn=lambda m: None)
    (rec,) = store.records()
    assert rec.run_id == "r1" and rec.schema_version == 2
    assert [(p.parent.name, why) for p, why in store.skipped] == [("bad", "its seed is a str")]
