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


def model_help(then: str = "") -> str:
    """``--model``'s help, listing what the loader takes today (shipped and pulled names)."""
    from polarity.predictor import model_choices

    return f"{model_choices()}{then}"


def add_load_flags(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--runtime``, for the commands that load a model."""
    parser.add_argument("--device", help="cpu (default), cuda, cuda:N or mps")
    from polarity.registry import RUNTIMES

    parser.add_argument("--runtime", choices=RUNTIMES,
                        help="runtime (default: $POLARITY_RUNTIME, else auto: each model's "
                        "preferred installed runtime, ONNX Runtime int8 for the encoder)")


def load_options(args):
    """The command's LoadOptions: its flags over ``POLARITY_*`` variables, read here, at the
    process edge."""
    import os

    from polarity.contract import LoadOptions

    return LoadOptions.from_environ(os.environ, device=getattr(args, "device", None),
                                    runtime=getattr(args, "runtime", None))


def add_model_flags(parser: argparse.ArgumentParser, model, prefix: str = "") -> None:
    """One flag per field of a pydantic model (nested models as ``--lora.r``), with the
    field's docstring as help: the config class is the single description of the options.
    Values stay strings here; the model validates them (ranges, choices) with its own
    messages. Lists are comma-separated; ``none`` sets an optional field to None."""
    from pydantic import BaseModel

    group = parser.add_argument_group(f"{model.__name__} fields (override the config files)")
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            add_model_flags(parser, annotation, f"{prefix}{name}.")
            continue
        if (field.json_schema_extra or {}).get("env_only"):
            group.add_argument(f"--{prefix}{name}".replace("_", "-"), action=_EnvOnly,
                               help=argparse.SUPPRESS, env=name.upper())
            continue
        choices = _literal_choices(annotation)
        default = field.get_default(call_default_factory=True)
        group.add_argument(f"--{prefix}{name}".replace("_", "-"),
                           dest=f"field:{prefix}{name}", metavar=choices or "VALUE",
                           # argparse formats help with %: a literal one ("86.6%") must
                           # be doubled
                           help=f"{(field.description or '').strip()} (default: {default})"
                           .replace("%", "%%"))


class _EnvOnly(argparse.Action):
    """A secret setting given as a flag: refused with the variable to use instead. A flag's
    value is visible to every user of the machine (``ps``, /proc/PID/cmdline); the refusal
    also keeps argparse from reading ``--api-key`` as an abbreviation of ``--api-keys-file``.
    The message never repeats the value."""

    def __init__(self, option_strings, dest, env: str, **kwargs):
        self.env = env
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} is not accepted on the command line, where every user "
                     f"of the machine can read it (ps): set {self.env} in the environment"
                     + (" or use API_KEYS_FILE" if "API_KEY" in self.env else ""))


def _literal_choices(annotation) -> str | None:
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    for arg in [annotation, *args]:
        if typing.get_origin(arg) is typing.Literal:
            return "{" + ",".join(map(str, typing.get_args(arg))) + "}"
        inner = typing.get_args(arg)
        if typing.get_origin(arg) is list and inner and typing.get_origin(inner[0]) is \
                typing.Literal:
            return "{" + ",".join(map(str, typing.get_args(inner[0]))) + "},..."
    return None


def model_flag_values(args: argparse.Namespace, model) -> dict:
    """The flags given on the command line, as (nested) model fields."""
    import typing

    out: dict = {}
    for dest, value in vars(args).items():
        if not dest.startswith("field:") or value is None:
            continue
        path = dest.removeprefix("field:").split(".")
        target, owner = out, model
        for part in path[:-1]:
            target = target.setdefault(part, {})
            owner = owner.model_fields[part].annotation
        annotation = owner.model_fields[path[-1]].annotation
        is_list = any(typing.get_origin(a) is list
                      for a in [annotation, *typing.get_args(annotation)])
        if value.lower() in ("none", "null"):
            target[path[-1]] = None
        elif is_list:
            target[path[-1]] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            target[path[-1]] = value
    return out
