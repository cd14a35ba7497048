"""``ichseg report``: ``toc`` writes the book's table of contents with every profile's results
(``ichseg.report.toc``); ``compact`` makes a profile's results small enough to commit
(``ichseg.report.publish``)."""

from __future__ import annotations

import argparse

from . import publish, toc

ACTIONS = {
    "toc": (toc, "write the book's generated table of contents (BOOK/_toc.generated.yml)"),
    "compact": (publish, "store a profile's evaluations compactly before committing them (float16 figure maps)"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, (module, text) in ACTIONS.items():
        module.add_arguments(sub.add_parser(name, help=text, description=text))


def run(args: argparse.Namespace) -> int:
    return ACTIONS[args.action][0].run(args)
