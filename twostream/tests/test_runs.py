"""RunRecord, the one reader and writer of run.json: run folders written before it still load,
and a rewrite gives back the same bytes."""

from __future__ import annotations

import json

import pytest

from twostream.errors import DatasetError
from twostream.runs import RUN_JSON, RunRecord, load_run

# run.json as `twostream train` wrote it before RunRecord: these keys, in this order, indent 2.
WRITTEN_BEFORE = {
    "stream": "temporal", "arch": "resnet18", "crop": 112, "new_length": 10, "bound": 20.0,
    "in_chans": 20, "drop_rate": 0.5, "classes": ["brush_hair", "cartwheel"],
    "rawframes": "/data/hmdb51/out",
    "extract_settings": {"flow": "tvl1", "short_side": 256, "bound": 20.0, "tvl1": None,
                         "jpeg_quality": 95},
    "train_config": {"rawframes": "/data/hmdb51/out", "stream": "temporal", "split": "1",
                     "arch": "resnet18", "epochs": 5, "device": "auto"},
}


@pytest.mark.parametrize("data", [
    WRITTEN_BEFORE,
    {**WRITTEN_BEFORE, "extract_settings": "unknown"},  # rawframes made by other tools
    {k: v for k, v in WRITTEN_BEFORE.items() if k not in ("train_config", "drop_rate")},  # older
    {"stream": "spatial", "classes": ["a", "b"]},  # the least a run.json holds
    {**WRITTEN_BEFORE, "a_later_key": {"x": 1}},  # from a newer twostream: kept, not dropped
], ids=["today", "unknown-extraction", "older-run", "minimal", "unknown-key"])
def test_a_run_json_reads_and_writes_back_byte_for_byte(tmp_path, data):
    text = json.dumps(data, indent=2)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / RUN_JSON).write_text(text, encoding="utf-8")
    run = load_run(tmp_path / "old")
    assert (run.stream, run.classes) == (data["stream"], data["classes"])
    assert run.train_settings() == data.get("train_config")
    run.write(tmp_path)
    assert (tmp_path / RUN_JSON).read_text(encoding="utf-8") == text


def test_fields_read_typed():
    run = RunRecord.from_dict(WRITTEN_BEFORE)
    assert (run.arch, run.crop, run.new_length, run.in_chans) == ("resnet18", 112, 10, 20)
    assert run.extract_settings["flow"] == "tvl1" and run.extra == {}
    assert RunRecord.from_dict({"stream": "spatial", "classes": []}).arch is None


def test_a_run_json_without_its_keys_is_refused(tmp_path):
    (tmp_path / RUN_JSON).write_text(json.dumps({"stream": "spatial"}))
    with pytest.raises(DatasetError, match="lacks classes"):
        load_run(tmp_path)
