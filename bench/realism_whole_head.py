"""The realism page's comparison: a synthetic slice beside the real whole-head CT (InVesalius
``Cranium.inv3``) at the same windows, and HU statistics per tissue class by the same rule
(``ichseg.data.realism.whole_head_compare``). Nothing is fitted to the real head: this only looks.

    .venv/bin/python bench/realism_whole_head.py      # needs invesalius-examples (apt)

Writes book/images/realism_whole_head.png and bench/measured/realism_whole_head.json (the table
the page renders).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ichseg.data.realism import figure, whole_head_compare  # noqa: E402
from ichseg.utils.atomic import atomic_write_text  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--in-plane", type=int, default=256)
    args = ap.parse_args(argv)
    table, images = whole_head_compare(seed=args.seed, in_plane=args.in_plane)
    fig = figure(images)
    png = ROOT / "book" / "images" / "realism_whole_head.png"
    fig.savefig(png.with_suffix(".tmp.png"), dpi=110)
    png.with_suffix(".tmp.png").replace(png)
    record = {"bench": "realism_whole_head", "seed": args.seed, "in_plane": args.in_plane,
              "what": "HU per tissue class inside the skull, same rule for both images "
                      "(ichseg.data.realism.whole_head_compare)",
              "table": json.loads(table.to_json(orient="records"))}
    atomic_write_text(ROOT / "bench" / "measured" / "realism_whole_head.json", json.dumps(record, indent=1) + "\n")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
