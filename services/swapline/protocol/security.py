"""Who may call a swapline server, and how a client proves it.

* **Stage services** (detector, aligner, swapper, blender, encoder): mutual
  TLS. A server presents its service certificate and accepts only clients
  that present one signed by the same CA, the orchestrator's; a job client
  cannot reach ``Encoder.Encode`` or ``Swapper`` at all.
* **The orchestrator** (the public API): TLS, and a bearer token in each
  call's ``authorization`` metadata, looked up in a token file (one line per
  token: ``OWNER ROLE SHA256``; the file holds digests, never tokens). The
  token's owner owns the jobs it submits; ``admin`` sees every job and may
  train and load models.
* **Insecure mode** (``SWAPLINE_INSECURE=1``): plaintext and no
  authentication, for a laptop or a test; the server says so in its log.

Certificates and keys are PEM files (a Kubernetes Secret mounted as files,
cert-manager's or one made by ``swapline certs``).
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from swapline.errors import InvalidInputError

if TYPE_CHECKING:  # gRPC loads when credentials are made: `swapline swap` never needs it
    import grpc

ROLES = ("user", "admin")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the owner of the jobs it submits."""

    owner: str
    admin: bool = False


# Insecure mode: everyone is this one (an admin: nothing is checked anyway).
ANONYMOUS = Principal("anonymous", admin=True)
CALLER: contextvars.ContextVar[Principal] = contextvars.ContextVar("caller", default=ANONYMOUS)


def caller() -> Principal:
    """The principal of the call being served."""
    return CALLER.get()


@dataclass(frozen=True)
class TlsFiles:
    """A certificate, its key and the CA that signs its peers' (PEM files)."""

    cert: Path
    key: Path
    ca: Path

    def _read(self) -> tuple[bytes, bytes, bytes]:
        try:
            return self.cert.read_bytes(), self.key.read_bytes(), self.ca.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read a TLS file: {exc}") from None

    def server_credentials(self, require_client_cert: bool) -> grpc.ServerCredentials:
        import grpc

        cert, key, ca = self._read()
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=require_client_cert
        )

    def client_credentials(self) -> grpc.ChannelCredentials:
        """For calls to a stage service: this certificate proves who calls."""
        import grpc

        cert, key, ca = self._read()
        return grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )


def api_credentials(ca: Path | None, token: str) -> grpc.ChannelCredentials:
    """For calls to the orchestrator: TLS (verified against ``ca``, or the
    system's roots) and the bearer token."""
    import grpc

    try:
        roots = ca.read_bytes() if ca is not None else None
    except OSError as exc:
        raise InvalidInputError(f"cannot read the CA certificate: {exc}") from None
    return grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(root_certificates=roots),
        grpc.access_token_call_credentials(token),
    )


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "swl_" + secrets.token_urlsafe(32)


class TokenTable:
    """Bearer tokens by digest: who each one is."""

    def __init__(self, entries: dict[str, Principal]) -> None:
        self._entries = entries

    @classmethod
    def from_file(cls, path: str | Path) -> TokenTable:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise InvalidInputError(f"cannot read the token file: {exc}") from None
        entries: dict[str, Principal] = {}
        for number, line in enumerate(lines, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) != 3 or fields[1] not in ROLES or len(fields[2]) != 64:
                raise InvalidInputError(
                    f"{path}:{number}: expected OWNER ROLE SHA256 (role user or admin)"
                )
            owner, role, digest = fields
            entries[digest.lower()] = Principal(owner, admin=role == "admin")
        if not entries:
            raise InvalidInputError(f"{path}: no tokens")
        return cls(entries)

    def lookup(self, token: str) -> Principal | None:
        digest = token_digest(token)
        for known, principal in self._entries.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None


def bearer_token(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str | None:
    """The token of an ``authorization: Bearer ...`` header, if any."""
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip()
    return None
