"""Errors a user can cause: the CLI prints their message on one line and exits non-zero."""


class UserError(Exception):
    """A problem with the user's flags, files or text, with a message saying what was expected."""
