"""``ichseg --help`` and every command's help are written for people: a real description, one
paragraph per command, every option described and its default shown."""

from __future__ import annotations

import argparse

import pytest

from ichseg import cli


def _parsers(parser: argparse.ArgumentParser, name: str):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child_name, child in action.choices.items():
                yield from _parsers(child, f"{name} {child_name}")


def test_top_level_help_describes_the_tool_not_its_docstring(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "The ``ichseg`` command" not in out and "``" not in out
    assert "hemorrhage" in out and "examples:" in out and "ichseg predict" in out
    for name in cli.COMMANDS:
        assert f"    {name}" in out


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_command_has_a_paragraph_and_every_option_a_description_and_its_default(name):
    module, one_line, paragraph = cli.COMMANDS[name]
    assert len(paragraph) >= 150 and paragraph.endswith(".") and paragraph != one_line, name
    for pname, parser in _parsers(cli.command_parser(name), f"ichseg {name}"):
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            label = action.option_strings[0] if action.option_strings else action.dest
            assert action.help, f"{pname} {label}: no description"
            shown = parser.formatter_class(pname)._get_help_string(action)
            has_default = action.default not in (None, False, [], argparse.SUPPRESS) and not action.required
            if has_default:
                assert "default" in shown, f"{pname} {label}: default {action.default!r} not shown"
        assert "(default: %(default)s)" not in text  # expanded, not printed raw


def test_predict_help_shows_the_defaults_it_takes_from_the_checkpoint(capsys):
    with pytest.raises(SystemExit):
        cli.main(["predict", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for words in ("--checkpoint CHECKPOINT the model", "--device {auto,cpu,cuda} where to run",
                  "--no-progress no progress bars", "(default: the profile's evaluate.sampler)",
                  "(default: the profile's evaluate.steps)", "(default: the profile's evaluate.ensemble)",
                  "(default: auto)", "--allow-non-hu"):
        assert words in out, words
