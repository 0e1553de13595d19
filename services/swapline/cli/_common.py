"""Argument types and defaults the commands share."""

from __future__ import annotations

import argparse

DEFAULT_REPOSITORY = "models/repository"
Subparsers = argparse._SubParsersAction  # the type of add_subparsers()' result


def frame_range(value: str) -> tuple[int, int | None]:
    """START:END frame indices (either may be left out)."""
    start, _, end = value.partition(":")
    try:
        return int(start or 0), (int(end) if end else None)
    except ValueError:
        raise argparse.ArgumentTypeError("expected START:END frame indices") from None
