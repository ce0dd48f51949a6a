"""The one exception type that tools turn into a one-line message and exit 2."""


class SegkitError(Exception):
    """A problem the user can fix; ``str(err)`` says what is wrong and how to fix it."""


def one_line(err: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message``, for reports that must stay one line."""
    lines = str(err).strip().splitlines()
    return f'{type(err).__name__}: {lines[0]}'[:limit] if lines else type(err).__name__
