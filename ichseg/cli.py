"""The ``ichseg`` command.

Subcommands are listed in ``COMMANDS`` as (name, module, help); each module provides
``add_arguments(parser)`` and ``run(args) -> int`` and is imported only when its command runs, so
``ichseg --help`` stays fast and one broken command cannot break the others.
User errors (``IchsegError`` and its subclasses, e.g. ``ConfigError``) print one line and exit 2;
any other exception is a bug and prints its traceback (exit 1). ``--debug`` shows the traceback of
user errors too.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from . import __version__
from .errors import IchsegError

# name -> (module implementing add_arguments/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "schedule": ("ichseg.diffusion.cli", "print a diffusion schedule's key values (ᾱ_t, SNR) for a config"),
    "prepare": ("ichseg.data.cli", "prepare a dataset folder into 2D slices as paper §4.1 (cached, fingerprinted)"),
    "phantom": ("ichseg.data.phantom_cli", "write synthetic head CT with hemorrhage in a dataset's folder layout"),
    "models": ("ichseg.engine.commands.models", "model card of the Table 2 variants or of a profile's methods: parameters and forward FLOPs"),
    "train": ("ichseg.engine.commands.train", "train one method under a profile (resumable, torchrun-ready)"),
    "evaluate": ("ichseg.engine.commands.evaluate", "evaluate a checkpoint on a prepared dataset (both metric protocols)"),
    "predict": ("ichseg.engine.commands.predict", "segment a head CT NIfTI: mask, probability, uncertainty, summary"),
    "export": ("ichseg.engine.commands.export", "the EMA weights of a trained run, small (float16) and without optimiser state, to hand out"),
    "study": ("ichseg.study.cli", "run the study's notebooks with papermill: prep, train, evaluate, results (skips current stages)"),
    "report": ("ichseg.report.cli", "report helpers: `toc` writes the book's toc with every profile's results, `compact` shrinks results to commit"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ichseg", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ichseg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of user errors too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    debug = "--debug" in argv[:1]
    if debug:
        argv = argv[1:]
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])  # prints help / errors for unknown commands
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    sub = argparse.ArgumentParser(prog=f"ichseg {name}", description=COMMANDS[name][1])
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except IchsegError as exc:
        if debug:
            traceback.print_exc()
        print(f"ichseg {name}: error: {exc}", file=sys.stderr)
        return 2
    except Exception:  # a bug, not the user's input: keep everything needed to find it
        traceback.print_exc()
        print(f"ichseg {name}: internal error (the traceback above); please report it", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
