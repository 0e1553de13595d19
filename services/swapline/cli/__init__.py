"""The ``swapline`` command line: one module per group of commands, each
holding its flags and its handler together."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from swapline import __version__
from swapline.cli import extract, model, operate, swap
from swapline.concurrency import set_background_nice
from swapline.config import ClientConfig
from swapline.errors import SwaplineError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swapline", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"swapline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (extract, model, swap, operate):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        # gRPC's own log lines (a poller noticing the process exit) are noise
        # to a command's user: its errors arrive as one line of ours.
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        args.config = ClientConfig.from_env()
        set_background_nice(args.config.background_nice)
        return int(args.func(args))
    except SwaplineError as exc:
        print(f"swapline: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("swapline: interrupted", file=sys.stderr)
        return 130
