"""Argument types shared by the sub-commands: argparse rejects a bad value with a usage line
before any model loads."""

from __future__ import annotations

import argparse


def positive_int(value: str) -> int:
    """An integer of at least 1 (batch sizes, counts of workers, threads, rows)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def add_load_flags(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--runtime``, for the commands that load a model."""
    parser.add_argument("--device", help="cpu (default), cuda, cuda:N or mps")
    parser.add_argument("--runtime", choices=["auto", "onnx", "torch"],
                        help="encoder runtime (default: $POLARITY_RUNTIME, else auto: ONNX "
                        "Runtime int8 on the CPU when installed)")


def load_options(args):
    """The command's LoadOptions: its flags over ``POLARITY_*`` variables, read here, at the
    process edge."""
    import os

    from polarity.contract import LoadOptions

    return LoadOptions.from_environ(os.environ, device=getattr(args, "device", None),
                                    runtime=getattr(args, "runtime", None))
