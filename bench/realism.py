"""How far the synthetic head CT is from real head CT, in HU per tissue class by one rule for both
(``ichseg.data.realism``): a synthetic slice against the real whole-head CT (InVesalius
``Cranium.inv3``, ``whole_head_compare``; also drawn at the same windows) and against the two real
pydicom slices with an inserted lesion (``compare``). Nothing is fitted to the real images: this
only looks.

    .venv/bin/python bench/realism.py      # needs invesalius-examples (apt) and pydicom-data

Writes book/images/realism_whole_head.png and bench/measured/realism.json (the tables the realism
and data pages render).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ichseg.data.realism import compare, figure, whole_head_compare  # noqa: E402
from ichseg.utils.atomic import atomic_write_text  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--in-plane", type=int, default=256, help="synthetic slice size against the whole head")
    ap.add_argument("--slices-in-plane", type=int, default=512, help="... against the pydicom slices (their grid)")
    args = ap.parse_args(argv)
    table, images = whole_head_compare(seed=args.seed, in_plane=args.in_plane)
    slices, _ = compare(seed=args.seed, in_plane=args.slices_in_plane)
    fig = figure(images)
    png = ROOT / "book" / "images" / "realism_whole_head.png"
    fig.savefig(png.with_suffix(".tmp.png"), dpi=110)
    png.with_suffix(".tmp.png").replace(png)
    record = {"bench": "realism", "seed": args.seed,
              "what": "HU per tissue class inside the skull, one rule for every image (ichseg.data.realism)",
              "whole_head": {"in_plane": args.in_plane, "table": json.loads(table.to_json(orient="records"))},
              "pydicom_slices": {"in_plane": args.slices_in_plane, "table": json.loads(slices.to_json(orient="records"))}}
    atomic_write_text(ROOT / "bench" / "measured" / "realism.json", json.dumps(record, indent=1) + "\n")
    print(table.to_string(index=False))
    print(slices.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
