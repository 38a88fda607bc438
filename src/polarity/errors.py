"""Errors that carry a message meant for the user: the CLI prints them as one line."""


class PolarityError(Exception):
    """An error whose message says what to fix; shown to users without a traceback."""


class InputError(PolarityError, ValueError):
    """Bad input to a predictor or a command: empty text, wrong type, unreadable file."""


class ModelNotFoundError(PolarityError, FileNotFoundError):
    """A model name or folder that cannot be resolved."""
