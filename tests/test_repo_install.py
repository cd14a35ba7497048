"""Reproducible installs: pyproject.toml holds the ranges, requirements/lock.txt the exact versions
with hashes that `make` installs, environment.yml the same ranges for conda; `make lock` writes the
last two from the first, and these tests fail when one of them was edited without the others."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import time
import zipfile
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
    assert "uv pip sync" in make and "--require-hashes" in make and "$(LOCK)" in make
    assert "LOCK   := requirements/lock.txt" in make


def test_the_installer_is_pinned_with_hashes():
    make = (ROOT / "Makefile").read_text()
    version = re.search(r"^UV_VERSION := (\S+)$", make, re.MULTILINE).group(1)
    pins = parse_lock((ROOT / "requirements" / "bootstrap.txt").read_text())
    assert list(pins) == ["uv"] and pins["uv"][0] == version and pins["uv"][1]


# -- the install step itself, on a wheelhouse of three tiny packages ---------------------------------
# `app` (locked 1.0) needs `other[extra]`; `other` is locked at 1.0, but 2.0 is on offer too, as when a
# dependency publishes a release after the lock was written. An installer that resolves dependencies
# again (pip, even with --require-hashes) sees the newer `other` and refuses or takes it.

def _wheel(folder: Path, name: str, version: str, requires=(), extras=()) -> Path:
    dist = f"{name}-{version}.dist-info"
    meta = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Provides-Extra: {e}\n" for e in extras) + "".join(f"Requires-Dist: {r}\n" for r in requires))
    files = {f"{name}/__init__.py": f"VERSION = {version!r}\n", f"{dist}/METADATA": meta,
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: ichseg-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}

    def digest(text: str) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()

    record = "".join(f"{path},sha256={digest(text)},{len(text.encode())}\n" for path, text in files.items())
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name_in_zip, text in files.items():
            archive.writestr(name_in_zip, text)
        archive.writestr(f"{dist}/RECORD", record + f"{dist}/RECORD,,\n")
    return path


def _wheelhouse_and_lock(tmp_path: Path) -> Path:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    locked = [("app", "1.0", ["other[extra]"]), ("other", "1.0", ['third; extra == "extra"'], ["extra"]), ("third", "1.0")]
    lines = [f"{spec[0]}=={spec[1]} --hash=sha256:{hashlib.sha256(_wheel(wheels, *spec).read_bytes()).hexdigest()}"
             for spec in locked]
    _wheel(wheels, "other", "2.0", ['third; extra == "extra"'], ["extra"])
    lock = tmp_path / "lock.txt"
    lock.write_text("\n".join(lines) + "\n")
    return lock


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "uv").exists(), reason="needs the installer of `make venv` (.venv/bin/uv)")
def test_make_venv_installs_exactly_the_lock_offline(tmp_path):
    lock = _wheelhouse_and_lock(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (venv / "bin" / "uv").symlink_to(ROOT / ".venv" / "bin" / "uv")  # the bootstrap step finds it installed
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path / "wheels"),
           "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_OFFLINE": "1"}
    started = time.monotonic()
    done = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "venv", f"VENV={venv}", f"LOCK={lock}",
                           f"INSTALL_SOURCES=--no-index --find-links {tmp_path / 'wheels'}", "PROJECT_INSTALL="],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 30
    site = next((venv / "lib").glob("python3*/site-packages"))
    installed = sorted(p.name for p in site.glob("*.dist-info"))
    assert installed == ["app-1.0.dist-info", "other-1.0.dist-info", "third-1.0.dist-info"]
    assert (venv / ".ichseg-installed").exists()
