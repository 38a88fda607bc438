"""The ``polarity`` command. Each sub-command is a thin wrapper over a typed Python API;
heavy imports happen inside the command that needs them, so ``--help`` stays instant."""


from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from polarity.cli import data, model, ops
from polarity.errors import PolarityError

ADDERS = (data._add_prepare, data._add_subset, data._add_augment, model._add_train,
          model._add_analyze, model._add_evaluate, model._add_calibrate, model._add_fit_long,
          ops._add_serve,
          ops._add_keys, ops._add_batch, model._add_models, model._add_export)


OFFLINE_HELP = ("never ask the Hugging Face hub (sets HF_HUB_OFFLINE=1): hf: data sources read "
                "their local_copy, base models come from packages, folders or `polarity models "
                "pull`")


def build_parser() -> argparse.ArgumentParser:
    from polarity.version import __version__

    parser = argparse.ArgumentParser(
        prog="polarity", description="Binary sentiment analysis: prepare, train, analyze.")
    parser.add_argument("--version", action="version", version=f"polarity {__version__}")
    parser.add_argument("--offline", action="store_true", help=OFFLINE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in ADDERS:
        add(sub)
    for command in sub.choices.values():  # `polarity prepare --offline` says the same
        command.add_argument("--offline", action="store_true", default=argparse.SUPPRESS,
                             help=OFFLINE_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.offline:
        # The process edge: the one setting the hub libraries (datasets, transformers) and
        # polarity.data.hub read, set before any of them is imported.
        os.environ["HF_HUB_OFFLINE"] = "1"
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except PolarityError as exc:
        print(f"polarity {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as exc:
        # Disk full, permission denied, a missing folder: the message names the file to fix.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"polarity {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"polarity {args.command}: interrupted", file=sys.stderr)
        return 130
