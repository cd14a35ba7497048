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


def variant_title(variant: str) -> str:
    """The Table 2 row title of one of our variants (the name itself for an unknown one)."""
    return paper_numbers()["table2"].get(variant, {}).get("title", variant)


VARIANT_ORDER = ("medsegdiffv2", "cross_attention", "reduce_layer", "resnet18", "full")
DATASET_ORDER = ("instance2022", "bhsd", "physionet")

__all__ = ["DATASET_ORDER", "VARIANT_ORDER", "dataset_title", "paper_numbers", "variant_title"]
