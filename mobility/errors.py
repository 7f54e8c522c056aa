"""The one base class of every error a user can act on: the CLI prints its message on one line."""


class MobilityError(Exception):
    """An error with a message that names what is wrong and where, fit for a one-line report."""
