"""The ``ichseg`` command.

Subcommands are listed in ``COMMANDS`` as name -> (module, one-line help, one-paragraph
description); each module provides
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
import textwrap
import traceback

from . import __version__
from .errors import IchsegError

# name -> (module implementing add_arguments/run, one-line help, one-paragraph description)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "schedule": ("ichseg.diffusion.cli", "print a diffusion schedule's key values (ᾱ_t, SNR) for a config",
                 "Print the noise schedule of a diffusion configuration: its settings, then β_t, ᾱ_t and the "
                 "signal-to-noise ratio in dB at a few timesteps, to check how fast a schedule destroys the mask."),
    "prepare": ("ichseg.data.cli", "prepare a dataset folder into 2D slices as paper §4.1 (cached, fingerprinted)",
                "Turn a dataset folder, as its publisher ships it (Instance2022, BHSD, PhysioNet layouts), into the "
                "2D axial slices the models train and evaluate on (paper §4.1: HU window, resize, normalisation, "
                "patient-level splits). Every image must be CT in Hounsfield units; a bad file stops the run with "
                "one line naming it, or is listed and left out with --skip-bad. The result is cached under a hash "
                "of the settings and the source files."),
    "phantom": ("ichseg.data.phantom_cli", "write synthetic head CT with hemorrhage in a dataset's folder layout",
                "Write synthetic head CT volumes (an anatomical atlas with inserted hemorrhages, in HU) and their "
                "masks as NIfTI, in the folder layout of one of the real datasets, so every command can be tried "
                "without downloading data. The same seed gives the same files."),
    "models": ("ichseg.engine.commands.models", "model card of the Table 2 variants or of a profile's methods: parameters and forward FLOPs",
               "Print the model card of the paper's Table 2 variants, or with --profile of every method a profile "
               "trains: trainable parameters of the condition branch and of the diffusion U-Net apart, the "
               "diffusion U-Net's share, and forward FLOPs of the condition branch and of one denoising step, "
               "at a chosen input size and with any model setting overridden."),
    "train": ("ichseg.engine.commands.train", "train one method under a profile (resumable, torchrun-ready)",
              "Train one method (a Table 2 variant or a Table 1 baseline) under a profile, preparing its data "
              "first when needed. The run folder receives checkpoints (best on the validation patients, never "
              "the test split), a training log and its provenance; an interrupted run continues exactly with "
              "--resume. Under torchrun it trains data-parallel."),
    "evaluate": ("ichseg.engine.commands.evaluate", "evaluate a checkpoint on a prepared dataset (both metric protocols)",
                 "Score a trained checkpoint on one split of a prepared dataset (`ichseg prepare`) under both metric "
                 "protocols: the paper's (threshold-averaged, per slice, empty slices included) and the strict one "
                 "(lesion slices only, per-volume 3D Dice, HD95, volume error). The checkpoint is sampled with the "
                 "settings its profile evaluates with unless an option replaces one. Writes metrics.json, "
                 "slices.csv and qualitative.npz into --out and prints the headline numbers."),
    "predict": ("ichseg.engine.commands.predict", "segment head CT scans: mask, probability, uncertainty, volume",
                "Segment intracerebral hemorrhage in head CT scans with a trained checkpoint. One scan (a NIfTI "
                "volume in Hounsfield units, or a folder holding a DICOM CT series; --series picks one where it "
                "holds several) gives, in --out, mask.nii.gz, probability.nii.gz and "
                "uncertainty.nii.gz on the scan's own grid and affine, preview.png and report.html to check "
                "them at a glance, and summary.json: the hemorrhage volume "
                "with the range of the ensemble members' volumes, the bedside ABC/2 estimate (Kothari et al., "
                "Stroke 1996), the slices involved and the settings used. Several scans, or a folder of them, give "
                "one subfolder per scan and a summary.csv; a rerun skips the scans already done, and a bad scan is "
                "recorded in the table while the others go on (the exit status is then 2). Only the files a prediction writes are ever "
                "replaced in --out. The checkpoint samples with the settings its profile evaluates with unless an "
                "option replaces one. A research tool: not for clinical use."),
    "export": ("ichseg.engine.commands.export", "the EMA weights of a trained run, small (float16) and without optimiser state, to hand out",
               "Write the EMA weights of a training checkpoint with its run config and a note, without the "
               "optimiser state and in float16 by default: a file a quarter of the checkpoint's size that "
               "`ichseg predict` and `ichseg evaluate` load like any checkpoint."),
    "study": ("ichseg.study.cli", "run the study's notebooks with papermill: prep, train, evaluate, results (skips current stages)",
              "Run the whole study of a profile as papermill notebooks: data preparation, every method and seed's "
              "training, their evaluation on each test dataset, and the results page. A stage whose inputs and "
              "code are unchanged since it last ran is skipped, so a rerun only does what changed; independent "
              "stages run side by side."),
    "preregister": ("ichseg.report.preregister_cli", "write a pass's plan (runs, config hashes, comparisons, decision rule) before its test evaluation",
                    "Write the pre-registration of a profile's pass to RESULTS/<profile>/preregistration.yaml: every "
                    "method and seed of its study section with the config hash each run will record, the budget and "
                    "checkpoint rules, the primary metrics, the family of comparisons with the interval, the "
                    "multiplicity correction and the decision rule, and (given a pilot's seed standard deviation, "
                    "measured on validation patients) the smallest difference each comparison can detect. Commit "
                    "it before the pass: it is refused once any test metric of the profile exists, and an existing "
                    "plan is never rewritten; the evidence page lists every deviation from it."),
    "report": ("ichseg.report.cli", "report helpers: `toc` writes the book's toc with every profile's results, `compact` shrinks results to commit",
               "Helpers for the book: `toc` writes the book's table of contents with a page for every profile "
               "that has results, `compact` stores a profile's evaluations small enough to commit."),
}

DESCRIPTION = textwrap.fill(
    "ichseg: the reproducible study of diffusion-based segmentation of intracerebral hemorrhage in head CT "
    "(ICIP 2025). Prepare datasets, train the paper's variants and baselines, evaluate them under the "
    "paper's and a strict protocol, run the whole study as notebooks, and segment your own scans with a "
    "trained model. Each command has its own --help.",
    width=88,
)
EPILOG = """examples:
  ichseg phantom data/demo --layout instance2022 --cases 2 --in-plane 128
  ichseg predict data/demo/train_2/data/001.nii.gz --checkpoint results/cpu/model/full.pt --out pred/001
  ichseg predict data/demo/train_2/data --checkpoint results/cpu/model/full.pt --out pred
  ichseg predict path/to/dicom_series --series 3 --checkpoint results/cpu/model/full.pt --out pred/ct
  ichseg study --profile smoke

Errors in your input print one line and exit with 2; --debug shows their traceback too."""


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help with every option's default shown (unless its help already says it, or it
    has none worth showing: None, False, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, argparse.SUPPRESS) or default == [] or action.required
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        return f"{text} (default: %(default)s)"


class _TopFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ichseg", description=DESCRIPTION, epilog=EPILOG, formatter_class=_TopFormatter)
    parser.add_argument("--version", action="version", version=f"ichseg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of user errors too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text, _description) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of ``ichseg NAME`` (its module imported)."""
    module = importlib.import_module(COMMANDS[name][0])
    sub = argparse.ArgumentParser(prog=f"ichseg {name}", description=COMMANDS[name][2], formatter_class=HelpFormatter)
    module.add_arguments(sub)
    _format_nested(sub)
    return sub


def _format_nested(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.formatter_class = HelpFormatter
                _format_nested(child)


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
    args = command_parser(name).parse_args(argv[1:])
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
