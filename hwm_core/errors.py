"""Errors a user can cause and fix.

Each carries one line that says what is wrong and what to do; the CLI prints it
and exits with code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem in the user's input: preset, data, checkpoint, run folder."""

    exit_code = 2


class ConfigError(UserError):
    """A preset or override that does not fit the schema."""


class DataError(UserError):
    """A data split that is missing, malformed or truncated."""


class CheckpointError(UserError):
    """A checkpoint that cannot be read or does not fit this run."""


class RunError(UserError):
    """A run folder that cannot be used: missing, locked, not writable."""
