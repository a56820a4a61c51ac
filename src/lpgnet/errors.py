"""One exception family for everything a user can get wrong.

The command line prints these as a single ``error: ...`` line and exits with status 2, so
every message must already say which file, which field and what was expected.
"""

from __future__ import annotations


class LPGNetError(Exception):
    """Base class: a problem with the user's input, config or files (not a bug)."""

    def __init__(self, message: object = "") -> None:
        # One line, always: a value quoted from the input may itself hold line breaks.
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))


class ConfigError(LPGNetError):
    """A config file or ``--set`` override that does not match the config dataclasses."""


class DataError(LPGNetError):
    """Data that cannot be used: wrong dimension, unknown label, NaN, empty dialogue..."""


class RunDirError(LPGNetError):
    """An output or run directory that is missing, incomplete or would be overwritten."""
