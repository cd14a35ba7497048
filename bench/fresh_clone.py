"""What a new user waits for: ``make venv`` and ``make book`` on a fresh clone of a commit.

Clones the commit into a temporary folder (no .venv, no results/smoke, no byte code), runs
``make venv`` with an empty installer cache (as on a fresh machine: every file is fetched and
unpacked again), then ``make book`` (the smoke study and the book), and times each command.

    python3 bench/fresh_clone.py [--commit HEAD] [--skip-book] [--then-check]

``--then-check`` runs, after ``make book``, what ``make test`` runs after it (the smoke study's
outcome tests and the browser test of the built book) and records whether they passed.

Prints the seconds and writes bench/out/fresh_clone.json (copy it to bench/measured/ to keep it).
Run it on an otherwise idle machine: the numbers are wall-clock seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=cwd, env=env)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd} (exit {done.returncode})")
    return time.monotonic() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--skip-book", action="store_true", help="time make venv only")
    ap.add_argument("--then-check", action="store_true", help="then the study and browser tests, as make test runs them")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "fresh_clone.json")
    ap.add_argument("--machine-note", default="", help="how busy the machine was, for the record")
    args = ap.parse_args()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", args.commit], capture_output=True,
                            text=True, check=True).stdout.strip()
    record = {"bench": "fresh_clone", "commit": commit, "cores": os.cpu_count(),
              "platform": platform.platform(), "python": platform.python_version(),
              **({"machine": args.machine_note} if args.machine_note else {})}
    with tempfile.TemporaryDirectory(prefix="ichseg-fresh-") as tmp:
        clone = Path(tmp) / "ichseg"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", commit], check=True)
        env = {**os.environ, "UV_CACHE_DIR": str(Path(tmp) / "uv-cache")}
        record["make_venv_s"] = round(timed(["make", "venv"], clone, env), 1)
        print(f"make venv: {record['make_venv_s']} s", flush=True)
        if not args.skip_book:
            # `make book` on a fresh clone includes its own set-up: time it from a second clean clone
            # that reuses nothing but the machine (a fresh venv, the same empty-cache rule)
            second = Path(tmp) / "ichseg-book"
            subprocess.run(["git", "clone", "--quiet", str(clone), str(second)], check=True)
            env["UV_CACHE_DIR"] = str(Path(tmp) / "uv-cache-book")
            record["make_book_s"] = round(timed(["make", "book"], second, env), 1)
            print(f"make book: {record['make_book_s']} s", flush=True)
            timings = json.loads((second / "results" / "smoke" / "timings.json").read_text())
            record["stage_seconds"] = {r["id"]: r["seconds"] for r in timings["stages"] if r["kind"] == "train"}
            if args.then_check:
                check = subprocess.run([".venv/bin/python", "-m", "pytest", "-q", "-m", "browser or study",
                                        "tests/test_study_outcome.py", "tests/test_book_browser.py"],
                                       cwd=second, env={**env, "ICHSEG_REQUIRE_BOOK": "1"})
                record["study_and_browser_tests"] = "passed" if check.returncode == 0 else f"failed (exit {check.returncode})"
                print(f"study and browser tests: {record['study_and_browser_tests']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
