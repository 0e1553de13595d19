"""The one progress bar of every command: on stderr, off with --quiet."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(
    desc: str, unit: str, quiet: bool, total: int | None = None, initial: int = 0
) -> Any:
    """A tqdm bar (``total`` None or 0: no known end)."""
    from tqdm import tqdm

    return tqdm(
        total=total or None,
        initial=initial,
        desc=desc,
        unit=unit,
        disable=quiet,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def show_frames(bar: Any, done: int, total: int, faces: int) -> None:
    """Frames done of ``total`` (0: unknown), with the faces swapped."""
    bar.total = total or None
    bar.n = done
    bar.set_postfix(faces=faces, refresh=True)


def add_quiet(parser: Any) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
