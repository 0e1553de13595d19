"""Storage roots: the only places ``file://`` URIs may point to."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from swapline.errors import InvalidInputError, PermissionDeniedError


class StorageRoots:
    def __init__(self, roots: Sequence[str | os.PathLike[str]]) -> None:
        self.roots = [Path(r).resolve() for r in roots]

    @classmethod
    def from_env(cls, value: str | None) -> StorageRoots:
        return cls([p for p in (value or "").split(os.pathsep) if p])

    def resolve(self, uri: str) -> Path:
        """The real path of a ``file://`` URI (or plain path) under a root.

        ``..`` components and symbolic links are resolved first, so neither
        leads out of the roots: anything outside is PERMISSION_DENIED.
        """
        parsed = urlparse(uri)
        if parsed.scheme not in ("", "file"):
            raise InvalidInputError(f"{uri}: only file:// URIs are supported")
        if parsed.netloc not in ("", "localhost"):
            raise InvalidInputError(f"{uri}: file URIs must not name a host")
        raw = unquote(parsed.path) if parsed.scheme else uri
        if not raw:
            raise InvalidInputError("empty path")
        path = Path(raw).resolve()
        for root in self.roots:
            if path == root or root in path.parents:
                return path
        raise PermissionDeniedError(f"{uri}: outside the storage roots")
