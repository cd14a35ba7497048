"""A book page that reads tables does not load torch: ``ichseg.report`` and the modules the intro,
results, evidence and reproduction pages use import the engine (and with it torch, nibabel and
pydicom, ~4 s of each page's build-time execution on a 2-core CPU) only inside the functions that
need it (a viewer volume, the worst slices, writing a pre-registration)."""

from __future__ import annotations

from _import_helpers import loaded_after

HEAVY = ("torch", "nibabel", "pydicom", "ichseg.engine")


def test_reading_results_for_a_page_does_not_load_torch():
    code = ("import ichseg.report\n"
            "from ichseg.report.verdict import headline_profile, verdict_markdown\n"
            "from ichseg.report.deviations import preregistration_section, read_plan\n"
            "from ichseg.report import bench, collect, load_study\n"
            "from ichseg.report.preregistration import planned_evaluation\n"
            "verdict_markdown(f\"results/{headline_profile('results')}\")\n")
    assert loaded_after(code, HEAVY) == []


def test_the_functions_that_need_the_engine_still_load_it():
    """The check can fail: resolving a profile for a pre-registration imports the engine."""
    code = ("from ichseg.report.preregistration import preregistration\n"
            "preregistration('smoke', seed_sd=0.01)\n")
    assert {"torch", "ichseg.engine"} <= set(loaded_after(code, HEAVY))
