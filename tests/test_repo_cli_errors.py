"""How ``ichseg`` reports errors: the user's mistakes in one line (exit 2), its own bugs with their
traceback (exit 1), and ``--debug`` shows the traceback of user errors too."""

from __future__ import annotations

import sys
import types

import pytest

from ichseg import cli
from ichseg.data import PrepConfig
from ichseg.diffusion import DiffusionConfig
from ichseg.engine import TrainConfig
from ichseg.errors import ConfigError, IchsegError
from ichseg.models import build_model


def _failing_run(args):
    if args.what == "config":
        raise ConfigError("train.lr: must be a positive number, got -1")
    if args.what == "input":
        raise IchsegError("/data/scan.nii.gz: not a NIfTI file")
    if args.what == "bug":
        {}["a key the code forgot"]
    if args.what == "value-bug":  # a ValueError from deep inside (a shape mix-up), not a bad option
        raise ValueError("operands could not be broadcast together with shapes (4,) (5,)")
    return 0


@pytest.fixture
def fake_command(monkeypatch):
    """An ``ichseg fail WHAT`` command whose ``run`` raises what it is asked to."""
    module = types.ModuleType("ichseg_fake_failing_command")
    module.add_arguments = lambda p: p.add_argument("what")
    module.run = _failing_run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli.COMMANDS, "fail", (module.__name__, "raise on purpose", "Raise what it is asked to, on purpose."))
    return "fail"


@pytest.mark.parametrize("what, message", [
    ("config", "ichseg fail: error: train.lr: must be a positive number, got -1"),
    ("input", "ichseg fail: error: /data/scan.nii.gz: not a NIfTI file"),
])
def test_user_error_is_one_line_and_exit_2(fake_command, capsys, what, message):
    assert cli.main([fake_command, what]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]


@pytest.mark.parametrize("what, last", [
    ("bug", "KeyError: 'a key the code forgot'"),
    ("value-bug", "ValueError: operands could not be broadcast together with shapes (4,) (5,)"),
])
def test_bug_shows_its_traceback_and_exits_1(fake_command, capsys, what, last):
    assert cli.main([fake_command, what]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "in _failing_run" in err and last in err  # where it happened and what it was
    assert err.strip().splitlines()[-1].startswith("ichseg fail: internal error")


@pytest.mark.parametrize("what", ["config", "input"])
def test_debug_shows_the_traceback_of_user_errors(fake_command, capsys, what):
    assert cli.main(["--debug", fake_command, what]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "in _failing_run" in err
    assert err.strip().splitlines()[-1].startswith("ichseg fail: error: ")


def test_success_prints_no_error(fake_command, capsys):
    assert cli.main(["--debug", fake_command, "fine"]) == 0
    assert capsys.readouterr().err == ""


def test_config_error_is_a_value_error_and_a_user_error():
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, IchsegError)


@pytest.mark.parametrize("make", [
    lambda: TrainConfig(lr=-1.0),
    lambda: DiffusionConfig(schedule="nope"),
    lambda: PrepConfig(size=3),
    lambda: build_model("no-such-variant"),
], ids=["train", "diffusion", "prep", "variant"])
def test_bad_configuration_values_raise_config_error(make):
    with pytest.raises(ConfigError):
        make()


def test_real_command_bad_option_is_one_line(capsys):
    assert cli.main(["models", "--image-size", "64", "--set", "widht=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ichseg models: error: overrides: unknown key(s) widht")
