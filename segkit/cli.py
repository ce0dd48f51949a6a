"""What every tool shares: the one-line error contract and the train/test flags."""
from __future__ import annotations

import sys
from typing import Callable

from .errors import SegkitError


def run_tool(main: Callable[[], int | None]) -> None:
    """Call ``main``; a :class:`SegkitError` becomes ``error: ...`` and exit 2."""
    try:
        code = main()
    except SegkitError as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
