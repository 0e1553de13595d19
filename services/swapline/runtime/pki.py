"""A private CA, a service certificate and API tokens for servers started on
one machine (tests, benchmarks, ``make up``) or a first cluster install
(``swapline certs``, ``swapline token``). A production cluster would rather
take its certificates from cert-manager; the servers read PEM files either
way."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from swapline.protocol.security import TlsFiles, api_credentials, new_token, token_digest

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
_SERVE_AND_CALL = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
DEV_OWNERS = {"alice": "user", "bob": "user", "admin": "admin"}


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        os.chmod(path, 0o600)


def write_certificates(directory: Path, names: Sequence[str], days: int = 365) -> TlsFiles:
    """A new CA (``ca.pem``, ``ca-key.pem``) and one service certificate
    signed by it (``service.pem``, ``service-key.pem``) for ``names`` (DNS
    names or IP addresses), good for serving and for calling."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swapline CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    alternative: list[x509.GeneralName] = []
    for name in names:
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative.append(x509.DNSName(name))
    key = _key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swapline service")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write(directory / "ca.pem", ca.public_bytes(pem))
    _write(directory / "ca-key.pem", _pem_key(ca_key), private=True)
    _write(directory / "service.pem", certificate.public_bytes(pem))
    _write(directory / "service-key.pem", _pem_key(key), private=True)
    return TlsFiles(directory / "service.pem", directory / "service-key.pem", directory / "ca.pem")


def token_line(owner: str, role: str, token: str) -> str:
    """The token file's line for ``token``: it keeps the digest only."""
    return f"{owner} {role} {token_digest(token)}"


@dataclass
class LocalSecurity:
    """Everything servers on one machine and their clients need: the files
    (under ``directory``) and a token per owner."""

    directory: Path
    tls: TlsFiles
    tokens_file: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls, directory: str | os.PathLike[str], owners: dict[str, str] | None = None
    ) -> LocalSecurity:
        directory = Path(directory)
        tls = write_certificates(directory, LOCAL_NAMES)
        roles = owners or DEV_OWNERS
        tokens = {owner: new_token() for owner in roles}
        lines = [token_line(owner, roles[owner], token) for owner, token in tokens.items()]
        tokens_file = directory / "tokens"
        _write(tokens_file, ("\n".join(lines) + "\n").encode(), private=True)
        for owner, token in tokens.items():
            _write(directory / f"{owner}.token", token.encode(), private=True)
        return cls(directory, tls, tokens_file, tokens)

    def server_env(self) -> dict[str, str]:
        return {
            "SWAPLINE_TLS_CERT": str(self.tls.cert),
            "SWAPLINE_TLS_KEY": str(self.tls.key),
            "SWAPLINE_TLS_CA": str(self.tls.ca),
            "SWAPLINE_API_TOKENS": str(self.tokens_file),
        }

    def client_env(self, owner: str = "alice") -> dict[str, str]:
        """What ``swapline swap --remote`` needs to call the orchestrator as
        ``owner``."""
        return {"SWAPLINE_TOKEN": self.tokens[owner], "SWAPLINE_TLS_CA": str(self.tls.ca)}

    def stage_credentials(self) -> grpc.ChannelCredentials:
        return self.tls.client_credentials()

    def api_credentials(self, owner: str = "alice") -> grpc.ChannelCredentials:
        return api_credentials(self.tls.ca, self.tokens[owner])


_shared: LocalSecurity | None = None


def shared_security() -> LocalSecurity:
    """One LocalSecurity for this process, in a temporary folder removed at
    exit: what servers started by tests and benchmarks use unless told."""
    global _shared
    if _shared is None:
        import atexit

        directory = tempfile.mkdtemp(prefix="swapline-pki-")
        atexit.register(shutil.rmtree, directory, True)
        _shared = LocalSecurity.create(directory)
    return _shared
