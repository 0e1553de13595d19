"""How a ``swapline`` command line becomes a process: here, with this
interpreter; in the image tests, in a container
(:meth:`swapline.devtools.images.Container.command`)."""

from __future__ import annotations

import sys
from collections.abc import Callable

# (arguments after ``swapline``, the settings the process needs set) -> argv.
Command = Callable[[list[str], dict[str, str]], list[str]]


def local_command(args: list[str], env: dict[str, str]) -> list[str]:
    """``swapline ARGS`` with this interpreter (``env`` is inherited)."""
    return [sys.executable, "-m", "swapline.cli", *args]
