"""Errors that carry a message meant for the user: the CLI prints them as one line."""


class PolarityError(Exception):
    """An error whose message says what to fix; shown to users without a traceback."""


class InputError(PolarityError, ValueError):
    """Bad input to a predictor or a command: empty text, wrong type, unreadable file."""


class ModelNotFoundError(PolarityError, FileNotFoundError):
    """A model name or folder that cannot be resolved."""


class ModelFolderError(ModelNotFoundError):
    """A model folder that must not load: a file its card names is missing, or the card
    holds a value no model can have (temperature 0, three labels)."""


def validation_message(exc: Exception) -> str:
    """One line from a pydantic ValidationError: ``field: problem; field: problem``."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for err in errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
