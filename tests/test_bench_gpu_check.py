"""bench/gpu_check.py (make gpu-check) on a CPU: the dry run builds the paper-layout networks at
tiny sizes, times one training step of each variant and one short ensemble, and writes the JSON
the GPU run writes (with the goals and whether they are met)."""

from __future__ import annotations

import json
import subprocess

from _bench_helpers import BENCH, load_bench


def test_gpu_check_dry_run_writes_its_json(tmp_path):
    record = load_bench("gpu_check").main(["--dry-run", "--out-dir", str(tmp_path)])
    written = json.loads((tmp_path / "gpu_check.json").read_text())
    assert written["summary"] == json.loads(json.dumps(record["summary"]))
    assert {r["variant"] for r in written["train"]} == {"full", "medsegdiffv2"}
    assert all(r["images_per_s"] > 0 and r["forward_GFLOPs_per_image"] > 0 for r in written["train"])
    (row,) = written["sampling"]
    assert row["ensemble"] == 5 and row["steps"] == 2 and row["s_per_slice"] > 0
    s = written["summary"]
    assert s["complete"] and s["dry_run"] and s["best_full_mfu"] is None and s["goals"] == {"mfu": 0.4, "s_per_slice": 0.1}
    for name in ("train_gpu.json", "sampling_gpu.json"):
        assert json.loads((tmp_path / name).read_text())["rows"]
    # the reproduction guide renders what the script writes
    from ichseg.report import bench

    rendered = bench.load_record(tmp_path, "gpu_check")
    assert len(bench.gpu_train_table(rendered)) == 2 and bench.gpu_train_table(rendered)["MFU (%)"].isna().all()
    assert bench.gpu_sampling_table(rendered)["s per slice"].item() == row["s_per_slice"]


def test_gpu_check_script_and_make_target():
    script = BENCH / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert "gpu_check.py" in script.read_text() and "timeout" in script.read_text()
    makefile = (BENCH.parent / "Makefile").read_text()
    assert "gpu-check:" in makefile and "bench/gpu_check.sh" in makefile
