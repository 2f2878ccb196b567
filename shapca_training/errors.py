"""The error of a command the user can mend (light to import: no torch, no transformers)."""


class UsageError(ValueError):
    """A command line, config or grid file that a script cannot use; the message says what to change.
    From the command line it is one line on standard error, not a traceback."""
