"""The rich console every table renderer prints into: width from ``COLUMNS`` or the terminal.

A fixed width folded long paths mid-name and ignored a wide (or narrow) terminal. The width
is ``$COLUMNS`` when set, else the terminal's when standard output is one; output to a pipe
or a file is not wrapped at all (``_UNWRAPPED`` columns), so paths and messages stay whole
for grep and logs.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from typing import Any

__all__ = ["output_width", "text_console"]

_UNWRAPPED = 4096
_MIN_WIDTH = 40


def output_width() -> int:
    """Columns to lay tables out in (see the module docstring)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return max(int(columns), _MIN_WIDTH)
    if sys.stdout.isatty():
        return max(shutil.get_terminal_size().columns, _MIN_WIDTH)
    return _UNWRAPPED


def text_console(buffer: io.StringIO, *, color: bool) -> Any:
    """A rich ``Console`` writing into ``buffer`` at :func:`output_width` columns."""
    from rich.console import Console

    return Console(
        file=buffer, force_terminal=color, no_color=not color, width=output_width(), soft_wrap=False
    )
