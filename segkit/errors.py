"""The one exception type that tools turn into a one-line message and exit 2."""


class SegkitError(Exception):
    """A problem the user can fix; ``str(err)`` says what is wrong and how to fix it."""
