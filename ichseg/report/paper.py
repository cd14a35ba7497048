"""The paper's own numbers (Tables 1-2), read from ``paper_numbers.yaml`` shipped in this package.

They are kept apart from anything measured: the report's tables put them in columns labelled
"paper" and nowhere else.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml


@lru_cache(maxsize=1)
def paper_numbers() -> dict:
    """The parsed YAML: ``datasets``, ``models``, ``table1``, ``table2``, ``text``, ``source``."""
    text = (resources.files("ichseg.report") / "paper_numbers.yaml").read_text()
    return yaml.safe_load(text)


def dataset_title(name: str) -> str:
    return paper_numbers()["datasets"].get(name, {}).get("title", name)


def method_title(method: str) -> str:
    """The Table 2 row title of one of our variants, the Table 1 column title of a baseline, the
    row title of a variant beyond the paper, or the name itself for an unknown method."""
    p = paper_numbers()
    if method in p["table2"]:
        return p["table2"][method]["title"]
    for model in p["models"].values():
        if model.get("method") == method:
            return model["title"]
    from ..models.registry import BEYOND_PAPER_ROWS  # our rows beyond the paper, marked as such

    return BEYOND_PAPER_ROWS.get(method, method)


# Table 2 rows (the diffusion variants) and Table 1 columns (our methods standing for them), in the
# paper's order; METHOD_ORDER orders every method of a study (ablation first, then baselines).
VARIANT_ORDER = ("medsegdiffv2", "cross_attention", "reduce_layer", "resnet18", "full")
TABLE1_ORDER = ("unet", "transunet", "nnunet", "ukan", "medsegdiffv2", "full")
METHOD_ORDER = VARIANT_ORDER + tuple(v for v in TABLE1_ORDER if v not in VARIANT_ORDER)
# realct: real CT, inserted lesions; own: a user's own scans (neither has a paper number)
DATASET_ORDER = ("instance2022", "bhsd", "physionet", "realct", "own")

__all__ = ["DATASET_ORDER", "METHOD_ORDER", "TABLE1_ORDER", "VARIANT_ORDER", "dataset_title", "method_title",
           "paper_numbers"]
