"""Stage stamps (``ichseg.study.stamps``): each record read once per pass, the code hashed once per
kind of stage, and ``--keep-trained`` keeping a training made from the same inputs, also one
recorded when run configs still carried the profile's description."""

from __future__ import annotations

import json

import yaml

from ichseg.study import stamps
from ichseg.study.planning import Stage
from ichseg.utils import config_hash


def _train_stage(tmp_path) -> Stage:
    run_dir = tmp_path / "runs" / "full-s0"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text("{}")
    return Stage(id="train-full-s0", kind="train", parameters={"method": "full", "seed": 0}, notebook=None, output=None,
                 inputs={"config": {"method": "full", "train": {"iterations": 5}}}, outputs=[run_dir / "run.json"],
                 run_dir=run_dir, method="full")


def test_a_record_is_read_once_and_what_the_pass_writes_is_kept(tmp_path, monkeypatch):
    book = stamps.StampBook(tmp_path)
    reads = []
    real = stamps.read_stamp
    monkeypatch.setattr(stamps, "read_stamp", lambda d, s: reads.append(s) or real(d, s))
    assert book.record("prep-bhsd") == {} and book.record("prep-bhsd") == {} and reads == ["prep-bhsd"]
    book.write("prep-bhsd", {"stamp": "s", "status": "complete"})
    assert book.record("prep-bhsd")["stamp"] == "s" and reads == ["prep-bhsd"]
    assert json.loads(book.path("prep-bhsd").read_text())["stamp"] == "s"
    hashed = []
    monkeypatch.setattr(stamps, "code_hash", lambda deps: hashed.append(deps) or "c")
    book.code("train"), book.code("train"), book.code("evaluate")
    assert len(hashed) == 2


def test_keep_trained_keeps_a_training_recorded_with_the_profile_description(tmp_path):
    stage = _train_stage(tmp_path)
    recorded = {**stage.inputs["config"], "description": "words of the profile, as they were"}
    (stage.run_dir / "config.yaml").write_text(yaml.safe_dump(recorded))
    book = stamps.StampBook(tmp_path)
    old_inputs = book.stamps_of(stage, {"config": recorded})[1]  # what the record says it was made from
    book.write(stage.id, {"stamp": "old-code", "inputs_stamp": old_inputs, "status": "complete",
                          "parameters": stage.parameters})
    assert old_inputs != book.stamps_of(stage)[1] and book.kept(stage, set())
    # other inputs (another iteration budget) are not the same training
    book.write(stage.id, {"stamp": "old-code", "inputs_stamp": config_hash(["other"], length=16), "status": "complete",
                          "parameters": stage.parameters})
    assert not book.kept(stage, set())
