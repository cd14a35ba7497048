"""Reproducible installs: pyproject.toml holds the ranges, requirements/lock.txt the exact versions
with hashes that `make` installs, environment.yml the same ranges for conda; `make lock` writes the
last two from the first, and these tests fail when one of them was edited without the others."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"


def _environment_module():
    spec = importlib.util.spec_from_file_location("ichseg_environment_writer", ROOT / "requirements" / "environment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def makefile_extras() -> list[str]:
    match = re.search(r"^EXTRAS\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "Makefile: no EXTRAS := line"
    return match.group(1).split()


def parse_lock(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) of a `--generate-hashes` requirements file."""
    pins: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=\S)", text):
        block = block.strip()
        if not block or block.startswith("#"):
            continue
        m = re.match(r"([A-Za-z0-9._-]+)==([^\s\\;]+)", block)
        assert m, f"{LOCK}: not an exact pin: {block.splitlines()[0]}"
        pins[canonicalize_name(m.group(1))] = (m.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return pins


def test_parse_lock_reads_pins_and_hashes():
    text = ("# header\nfoo-bar==1.2 \\\n    --hash=sha256:" + "a" * 64 + " \\\n    --hash=sha256:" + "b" * 64
            + "\n    # via x\nbaz==3.0\n")
    assert parse_lock(text) == {"foo-bar": ("1.2", ["a" * 64, "b" * 64]), "baz": ("3.0", [])}


def test_makefile_installs_every_extra():
    env = _environment_module()
    project = env.tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(makefile_extras()) == sorted(project["optional-dependencies"])


def test_every_requirement_is_pinned_with_hashes_within_its_range():
    env = _environment_module()
    pins = parse_lock(LOCK.read_text())
    problems = []
    for line in env.requirements(ROOT / "pyproject.toml", makefile_extras()):
        req = Requirement(line)
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req.name}: not in the lock")
        elif not req.specifier.contains(pin[0], prereleases=True):
            problems.append(f"{req.name}: locked {pin[0]} is outside {req.specifier}")
    assert not problems, "run `make lock`:\n" + "\n".join(problems)
    unhashed = [name for name, (_, hashes) in pins.items() if not hashes]
    assert not unhashed, f"pins without hashes (pip --require-hashes refuses them): {unhashed}"


def test_environment_yml_is_generated_from_pyproject():
    env = _environment_module()
    extras = makefile_extras()
    expected = env.environment_yml(env.requirements(ROOT / "pyproject.toml", extras), extras)
    text = (ROOT / "environment.yml").read_text()
    assert text == expected, "environment.yml is out of date: run `make lock`"
    pip = next(d["pip"] for d in yaml.safe_load(text)["dependencies"] if isinstance(d, dict))
    assert pip[-1] == "-e ." and len(pip) - 1 == len(set(pip) - {"-e ."})


def test_unknown_extra_is_refused(tmp_path):
    env = _environment_module()
    with pytest.raises(SystemExit, match="no extra"):
        env.requirements(ROOT / "pyproject.toml", ["no-such-extra"])


def test_make_and_ci_install_from_the_lock():
    make = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r $(LOCK)" in make and "install --quiet --no-deps" in make
    assert "LOCK   := requirements/lock.txt" in make
