"""``ichseg models --profile``: the card of every method of a profile at its runs' settings; and the
``evidence`` profile keeps what its comments promise (the diffusion U-Net at least a quarter of every
diffusion model, the paper's objective, one budget rule, the seeds of the design)."""

from __future__ import annotations

import pytest

from ichseg.cli import main
from ichseg.engine.commands.models import MIN_DIFFUSION_SHARE, format_profile_card, profile_card, study_methods
from ichseg.engine.config import load_profile, method_kind, resolve_run_config, run_config_hash

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def evidence_profile():
    return load_profile("evidence")


def _runs(profile):
    methods, overrides = study_methods(profile)
    return {m: resolve_run_config(profile, m, overrides[m]) for m in methods}


def test_the_card_of_a_profile_uses_each_methods_own_overrides(evidence_profile):
    small = dict(evidence_profile, study={"methods": ["full", "ukan", "nnunet"],
                                  "method_overrides": {"full": ["model.base_channels=16"]}})
    diffusion, direct = profile_card(small)
    assert [r["variant"] for r in diffusion] == ["full"] and [r["method"] for r in direct] == ["ukan"]
    plain, _ = profile_card(dict(small, study={"methods": ["full"]}))
    assert diffusion[0]["diffusion_params_M"] > plain[0]["diffusion_params_M"]  # base 16, not 8
    assert diffusion[0]["condition_params_M"] == pytest.approx(plain[0]["condition_params_M"])
    text = format_profile_card(diffusion, direct)
    assert "cond M" in text and "diff M" in text and "ukan" in text
    # parameters only (the book's split table): the same counts, no FLOPs traced
    quick_diffusion, quick_direct = profile_card(small, flops=False)
    for key in ("params_M", "condition_params_M", "diffusion_params_M", "diffusion_share"):
        assert quick_diffusion[0][key] == diffusion[0][key]
    assert quick_direct[0]["params_M"] == direct[0]["params_M"]
    assert quick_diffusion[0]["denoise_GFLOPs"] != quick_diffusion[0]["denoise_GFLOPs"]  # NaN
    assert diffusion[0]["denoise_GFLOPs"] > 0


def test_evidence_diffusion_unet_holds_a_quarter_of_every_diffusion_model(evidence_profile, capsys):
    assert main(["models", "--profile", "evidence"]) == 0
    out = capsys.readouterr().out
    assert f"diffusion U-Net >= {MIN_DIFFUSION_SHARE:.0%} of the parameters in every diffusion method: yes" in out
    methods, _ = study_methods(evidence_profile)
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:] if line.strip()}
    for m in methods:
        if method_kind(m) == "diffusion":
            cond_m, diff_m, share = float(rows[m][6]), float(rows[m][7]), float(rows[m][8])
            assert share >= 100 * MIN_DIFFUSION_SHARE and diff_m >= cond_m / 3 - 0.01


def test_profile_excludes_explicit_sizes(capsys):
    assert main(["models", "--profile", "evidence", "--set", "base_channels=4"]) == 2
    assert "--profile" in capsys.readouterr().err


def test_evidence_holds_one_objective_and_one_budget(evidence_profile):
    """One objective for every diffusion method: x0 / alpha 1, the arm the validation pilot adopted
    when the paper's eps / alpha 5 failed its pre-written rule (bench/evidence_pilot.py)."""
    runs = _runs(evidence_profile)
    diffusion = {m: c for m, c in runs.items() if method_kind(m) == "diffusion"}
    for cfg in diffusion.values():
        assert cfg["diffusion"]["prediction"] == "x0" and cfg["loss"]["alpha"] == 1
        assert cfg["model"]["condition_channels"] == 32 and cfg["train"]["select_on"] == "strict_dice"
    budget = {(c["train"]["iterations"], c["train"]["eval_every"], c["train"]["lr"], c["train"]["batch_size"])
              for c in diffusion.values()}
    assert len(budget) == 1
    # no run depends on the study's settings: its section is not part of the run config
    assert all("study" not in c for c in runs.values())
    other = dict(evidence_profile, study={**evidence_profile["study"], "seeds": [7]})
    assert run_config_hash(_runs(other)["full"]) == run_config_hash(runs["full"])
    # the paper's ImageNet ResNet18 file is absent here: those rows train from scratch, the Lite0 one not
    assert runs["full"]["model"]["pretrained"] == "none" and runs["resnet18"]["model"]["pretrained"] == "none"
    assert "pretrained" not in runs["full_lite0"]["model"] or runs["full_lite0"]["model"]["pretrained"] == "imagenet"


def test_evidence_seeds_follow_the_design(evidence_profile):
    study = evidence_profile["study"]
    seeds = {m: study["method_seeds"].get(m, study["seeds"]) for m in study["methods"]}
    assert len(seeds["medsegdiffv2"]) >= 5 and len(seeds["full"]) >= 5 and len(seeds["full_lite0"]) >= 3
    for m in ("cross_attention", "reduce_layer", "resnet18", "full_lite0_scratch", "unet", "nnunet"):
        assert len(seeds[m]) >= 2
    assert len(seeds["transunet"]) >= 1 and len(seeds["ukan"]) >= 1
