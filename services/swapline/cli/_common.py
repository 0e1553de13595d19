"""Argument types and defaults the commands share."""

from __future__ import annotations

import argparse

DEFAULT_REPOSITORY = "models/repository"
Subparsers = argparse._SubParsersAction  # the type of add_subparsers()' result


def mask_types(value: str) -> tuple[str, ...]:
    """Comma-separated mask types: box, region, occlusion."""
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    allowed = ("box", "region", "occlusion")
    if not names or any(n not in allowed for n in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError("expected one or more of box,region,occlusion")
    return names


def frame_range(value: str) -> tuple[int, int | None]:
    """START:END frame indices (either may be left out)."""
    start, _, end = value.partition(":")
    try:
        return int(start or 0), (int(end) if end else None)
    except ValueError:
        raise argparse.ArgumentTypeError("expected START:END frame indices") from None
