"""The trained model the repository carries (README, "Segmenting your own scan"): the README's two
commands, run as written on a fresh clone, segment the synthetic scan's hemorrhage."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ichseg.cli import main as cli_main
from ichseg.engine.checkpoint import load_checkpoint
from ichseg.utils import method_of

pytestmark = pytest.mark.usefixtures("single_thread")

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "results" / "cpu" / "model" / "full.pt"


def readme_commands() -> list[list[str]]:
    """The ``ichseg`` command lines of the README's section on segmenting a scan, as argv lists."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Segmenting your own scan"):]
    section = section[: section.index("\n## ", 4)] if "\n## " in section[4:] else section
    block = section[section.index("```console") + len("```console"): section.index("```", section.index("```console") + 3)]
    return [shlex.split(line)[1:] for line in block.strip().splitlines() if line.startswith(".venv/bin/ichseg ")]


def test_the_committed_weights_are_small_ema_only_and_say_what_they_are():
    assert WEIGHTS.is_file(), f"{WEIGHTS}: missing (ichseg export of the best cpu full model)"
    assert WEIGHTS.stat().st_size <= 15e6
    state = load_checkpoint(WEIGHTS)
    assert "optimizer" not in state and method_of(state["config"]) == "full" and state["config"]["profile"] == "cpu"
    assert "synthetic" in state["note"] and "not for clinical use" in state["note"]


def test_the_committed_weights_carry_the_recipe_the_last_pilot_round_chose():
    """The transfer pilot's last round decides the shipped model's training data; the file's note
    names the recipe it was trained with, so a new decision cannot leave the weights behind."""
    measured = REPO / "bench" / "measured"
    last = max(measured.glob("transfer_pilot*.json"), key=lambda p: json.loads(p.read_text()).get("round", 1))
    chosen = json.loads(last.read_text())["chosen"]
    assert f"recipe '{chosen}'" in load_checkpoint(WEIGHTS)["note"], last


def test_readme_example_segments_the_hemorrhage(tmp_path, monkeypatch, capsys):
    commands = readme_commands()
    assert [c[0] for c in commands] == ["phantom", "predict"]
    monkeypatch.chdir(tmp_path)  # the README's relative outputs land here; the weights path is the repo's
    for argv in commands:
        argv = [str(WEIGHTS) if a == "results/cpu/model/full.pt" else a for a in argv]
        if argv[0] == "predict":
            argv.append("--no-progress")
        assert cli_main(argv) == 0, capsys.readouterr().err
    scan = next(a for a in commands[1] if a.endswith(".nii.gz"))
    label = np.asarray(nib.load(str(tmp_path / scan.replace("/data/", "/label/"))).dataobj) > 0
    out = tmp_path / commands[1][commands[1].index("--out") + 1]
    mask = np.asarray(nib.load(str(out / "mask.nii.gz")).dataobj) > 0
    summary = json.loads((out / "summary.json").read_text())
    assert label.any(), "the README's demo patient has no hemorrhage: pick another --seed"
    dice = 2 * (mask & label).sum() / (mask.sum() + label.sum())
    assert dice >= 0.5, f"3D Dice {dice:.2f} of the committed model on the README's demo scan"
    assert summary["hemorrhage_volume_ml"] > 0
    # the line the README shows is the one printed (to rounding: CPUs without bf16 sample in fp32)
    shown = re.search(r"hemorrhage volume ([\d.]+) mL \(ensemble members ([\d.]+)-([\d.]+) mL, ABC/2 ([\d.]+) mL\) "
                      r"on (\d+) slices", (REPO / "README.md").read_text())
    printed = capsys.readouterr().out
    assert shown and "ensemble members" in printed and (out / "preview.png").is_file() and (out / "report.html").is_file()
    lo, hi = summary["hemorrhage_volume_range_ml"]
    got = [summary["hemorrhage_volume_ml"], lo, hi, summary["abc2"]["volume_ml"]]
    assert [float(v) for v in shown.groups()[:4]] == pytest.approx(got, abs=1.0), printed
    assert int(shown.group(5)) == pytest.approx(len(summary["slices_with_hemorrhage"]), abs=1)
    # the preview the README shows is this one (to rounding)
    from PIL import Image

    shown_png = np.asarray(Image.open(REPO / "book" / "images" / "demo_preview.png").convert("RGB"), dtype=float)
    made_png = np.asarray(Image.open(out / "preview.png").convert("RGB"), dtype=float)
    assert shown_png.shape == made_png.shape and np.abs(shown_png - made_png).mean() < 2.0


def test_readme_states_the_committed_real_anatomy_record():
    """The README's sentence on how far the shipped model carries to a real head holds the numbers of
    the committed record (``bench/real_anatomy.py --in-domain``), so a re-measured model cannot leave
    it behind."""
    rec = json.loads((REPO / "bench" / "measured" / "real_anatomy.json").read_text())
    assert rec["checkpoint"].endswith("results/cpu/model/full.pt"), rec["checkpoint"]  # the shipped model
    overall, clean = rec["summary"]["overall"], rec["summary"]["clean_head_fp_ml"]
    shown = re.search(r"lesion-slice Dice \*\*([\d.]+)\*\* against \*\*([\d.]+)\*\* on the synthetic test patients, "
                      r"\*\*(\d+) of (\d+)\*\* inserted bleeds found, volumes off by \*\*(\d+) %\*\* on average, "
                      r"and \*\*([\d.]+) mL\*\* marked on the clean head", " ".join((REPO / "README.md").read_text().split()))
    assert shown, "README: the real-anatomy sentence is missing or reworded (see this test)"
    expected = (f"{overall['lesion_slice_dice']:.2f}", f"{rec['in_domain']['lesion_slice_dice']:.2f}",
                str(round(overall["detected"] * overall["cases"])), str(overall["cases"]),
                str(round(100 * overall["volume_error_abs_mean"])), f"{clean[0]:.2f}")
    assert shown.groups() == expected
