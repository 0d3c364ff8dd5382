"""Security profiles of the OPC UA server: endpoints, certificates, identities and permissions.

Profiles (``simline live --security``):

``open`` (opt-in, demos only)
    SecurityPolicy None only, anonymous identity only, and anonymous may read, browse, subscribe, write setpoints
    and call methods. Logs a warning.
``default``
    Basic256Sha256 Sign and SignAndEncrypt endpoints, no None endpoint. Identities: anonymous (read-only: browse,
    read, subscribe, history read; no write, no call), user name and password from the users file (operators
    may write and call, viewers are read-only) and X509 user certificates from ``pki/users/`` (operators).
    Client application certificates are trusted on first use: a new one is accepted, copied to
    ``pki/accepted/`` and logged, so a client such as UaExpert connects without manual steps.
``secure``
    Basic256Sha256 SignAndEncrypt and Sign only, no anonymous identity, users from the users file or X509 user
    certificates from ``pki/users/``. Only client application certificates in ``pki/trusted/`` are accepted;
    others are refused with BadSecurityChecksFailed and copied to ``pki/rejected/`` (move one to ``pki/trusted/``
    to trust it; no restart needed).

State lives in ``<state_dir>/pki/``: ``own/`` (the server certificate ``server_cert.der`` and its key
``server_key.pem``, mode 0600, created on first start and reused), ``trusted/``, ``accepted/``, ``rejected/``
and ``users/`` (DER or PEM files). The application URI is ``urn:simline:server:<hostname>``, the URI of the
server certificate's SubjectAltName. asyncua's built-in remote ``admin`` user is disabled in every profile, and
so is RegisterServer (which asyncua serves to anyone, without a session: simline is no discovery server).

asyncua lets a client open a SecurityPolicy None channel for discovery even when no None endpoint exists, and
then create and activate a session on it with no permission checks. Outside the open profile a session guard
refuses to activate sessions on such channels, and checks the client certificate the channel proved (the
checks run at ActivateSession, after the client has proved it holds the certificate's private key).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import logging
import os
import re
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import cert_gen, uacrypto
from asyncua.crypto.permission_rules import USER_TYPES, PermissionRuleset, User, UserRole
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from opcua_server.users import SimlineUserManager, TokenKind, identity_token

__all__ = [
    "PROFILES",
    "READ_ONLY_TYPES",
    "Pki",
    "ReadOnlyAnonymousRuleset",
    "SecurityConfig",
    "application_uri",
    "apply_security",
    "ensure_server_certificate",
    "thumbprint",
]

log = logging.getLogger("simline.opcua")

Profile = Literal["open", "default", "secure"]
PROFILES: tuple[str, ...] = ("open", "default", "secure")

_WRITE_TYPES = {
    ua.ObjectIds.WriteRequest_Encoding_DefaultBinary,
    ua.ObjectIds.CallRequest_Encoding_DefaultBinary,
}
READ_ONLY_TYPES = [t for t in USER_TYPES if t not in _WRITE_TYPES]
"""Requests an anonymous (or viewer) user may make: browse, read, subscribe, history read; not write or call."""

SERVER_CERT = "server_cert.der"
SERVER_KEY = "server_key.pem"
CERT_DAYS = 730
RENEW_DAYS = 30
"""A server certificate expiring within this many days is replaced at start."""
MAX_RECORDED = 200
"""At most this many certificates are recorded in ``pki/accepted/`` and in ``pki/rejected/`` each."""
_CERT_SUFFIXES = {".der", ".pem", ".crt", ".cer"}


class ReadOnlyAnonymousRuleset(PermissionRuleset):
    """Anonymous users browse, read and subscribe; authenticated users also write and call methods."""

    def __init__(self, anonymous_writes: bool = False) -> None:
        user = set(map(ua.NodeId, USER_TYPES))
        read = set(map(ua.NodeId, READ_ONLY_TYPES))
        self._allowed = {
            UserRole.Admin: user,
            UserRole.User: user,
            UserRole.Anonymous: user if anonymous_writes else read,
        }

    def check_validity(self, user: User, action_type_id: ua.NodeId, body: Any) -> bool:
        return action_type_id in self._allowed.get(user.role, set())


@dataclass
class SecurityConfig:
    """Which security profile to serve and where its state (certificates, trusted clients) lives."""

    profile: Profile = "default"
    state_dir: Path = field(default_factory=lambda: Path(".simline-state"))
    users_file: Path | None = None


def application_uri(hostname: str | None = None) -> str:
    """The server's application URI, ``urn:simline:server:<hostname>``."""
    return f"urn:simline:server:{hostname or socket.gethostname()}"


def thumbprint(der: bytes) -> str:
    """The SHA-1 thumbprint of a certificate, as OPC UA tools show it (an identifier, not a security check)."""
    return hashlib.sha1(der, usedforsecurity=False).hexdigest()


def _san_uris(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _load_der(path: Path) -> bytes:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    x509.load_der_x509_certificate(data)  # must parse
    return data


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only (mode 0600), atomically."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- the server certificate ------------------------------------------------------------------------------
def _reuse_problem(cert: x509.Certificate, key: Any, uri: str) -> str | None:
    if uri not in _san_uris(cert):
        return f"its SubjectAltName URI {_san_uris(cert)} is not the application URI {uri}"
    now = dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc < now + dt.timedelta(days=RENEW_DAYS):
        return f"it expires on {cert.not_valid_after_utc:%Y-%m-%d}"
    if cert.not_valid_before_utc > now + dt.timedelta(minutes=5):
        return f"it is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M}"
    public = cert.public_key()
    if not isinstance(key, rsa.RSAPrivateKey) or not isinstance(public, rsa.RSAPublicKey):
        return "it is not an RSA certificate and key"
    if key.public_key().public_numbers() != public.public_numbers():
        return "the private key does not belong to it"
    return None


def ensure_server_certificate(
    own: Path, uri: str, hostname: str | None = None, extra_hosts: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """Create the server's self-signed application certificate in ``own`` on first use, reuse it afterwards.

    RSA 2048, SHA-256, valid for :data:`CERT_DAYS` days, SubjectAltName: URI ``uri``, DNS ``hostname`` and
    ``localhost``, IP 127.0.0.1 (and ``extra_hosts``). It is replaced when its URI differs from ``uri`` (the
    host name changed), when it expires within :data:`RENEW_DAYS` days or when the key does not match.

    Returns:
        The paths of the certificate (DER) and of the private key (PEM, mode 0600).
    """
    hostname = hostname or socket.gethostname()
    own.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        own.chmod(0o700)
    cert_path, key_path = own / SERVER_CERT, own / SERVER_KEY
    if cert_path.exists() and key_path.exists():
        try:
            cert = x509.load_der_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            problem = _reuse_problem(cert, key, uri)
        except (OSError, ValueError, TypeError) as exc:
            problem = f"it cannot be read ({exc})"
        if problem is None:
            if key_path.stat().st_mode & 0o077:
                key_path.chmod(0o600)
            return cert_path, key_path
        log.warning(
            "replacing the OPC UA server certificate %s: %s; clients must trust the new one",
            cert_path,
            problem,
        )

    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)]
    seen: set[str] = set()
    for host in (hostname, "localhost", "127.0.0.1", *extra_hosts):
        if not host or host in seen or host in ("0.0.0.0", "::"):
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = cert_gen.generate_private_key()  # RSA 2048, e=65537
    cert = cert_gen.generate_self_signed_app_certificate(
        key,
        f"simline@{hostname}",
        {"organizationName": "simline"},
        names,
        extended=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        days=CERT_DAYS,
    )
    _write_private(key_path, cert_gen.dump_private_key_as_pem(key))
    der = cert.public_bytes(serialization.Encoding.DER)
    tmp = cert_path.with_name(f".{cert_path.name}.tmp")
    tmp.write_bytes(der)
    os.replace(tmp, cert_path)
    log.info("created the OPC UA server certificate %s (thumbprint %s, %s)", cert_path, thumbprint(der), uri)
    return cert_path, key_path


# --- client certificates ---------------------------------------------------------------------------------
class Pki:
    """The certificate folders under ``<state_dir>/pki``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.own = root / "own"
        self.trusted = root / "trusted"
        self.accepted = root / "accepted"
        self.rejected = root / "rejected"
        self.users = root / "users"
        for d in (self.own, self.trusted, self.accepted, self.rejected, self.users):
            d.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def certificates(folder: Path) -> dict[bytes, Path]:
        """The DER of every certificate file (DER or PEM) in a folder; unreadable files are skipped."""
        out: dict[bytes, Path] = {}
        with contextlib.suppress(FileNotFoundError):
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() not in _CERT_SUFFIXES or not path.is_file():
                    continue
                try:
                    out[_load_der(path)] = path
                except (OSError, ValueError) as exc:
                    log.warning("ignoring %s: not a certificate (%s)", path, exc)
        return out

    def is_trusted(self, der: bytes) -> bool:
        return der in self.certificates(self.trusted)

    def user_certs(self) -> set[bytes]:
        """X509 user identity certificates that log in as operators."""
        return set(self.certificates(self.users))

    def record(self, folder: Path, der: bytes, cert: x509.Certificate) -> Path | None:
        """Copy a certificate into a folder (once, named ``<CN>_<thumbprint>.der``); ``None`` if it was there."""
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", _common_name(cert))[:40].strip("._") or "client"
        path = folder / f"{name}_{thumbprint(der)}.der"
        if path.exists() or der in self.certificates(folder):
            return None
        if sum(1 for _ in folder.glob("*.der")) >= MAX_RECORDED:
            log.warning("not recording client certificate %s: %s holds %d already", path.name, folder, MAX_RECORDED)
            return None
        path.write_bytes(der)
        return path

    def check_client(self, profile: Profile, der: bytes, description: ua.ApplicationDescription | None) -> None:
        """Accept or refuse the application certificate a client's secure channel proved it holds.

        Raises:
            ServiceError: BadCertificateInvalid, BadCertificateTimeInvalid, BadCertificateUriInvalid (secure
                profile; the default profile only warns) or BadSecurityChecksFailed (secure profile: not trusted).
        """
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            raise ServiceError(ua.StatusCodes.BadCertificateInvalid) from None
        app_uri = description.ApplicationUri if description is not None else None
        who = f"{_common_name(cert) or '?'} ({app_uri or 'no application URI'}, thumbprint {thumbprint(der)})"
        now = dt.datetime.now(dt.UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            log.warning("OPC UA client refused: certificate of %s is expired or not yet valid", who)
            raise ServiceError(ua.StatusCodes.BadCertificateTimeInvalid)
        if app_uri not in _san_uris(cert):
            if profile == "secure":
                log.warning("OPC UA client refused: %s has a certificate for URI %s", who, _san_uris(cert))
                raise ServiceError(ua.StatusCodes.BadCertificateUriInvalid)
            log.warning(
                "OPC UA client %s has a certificate for URI %s (accepted in this profile)", who, _san_uris(cert)
            )
        if self.is_trusted(der):
            log.info("OPC UA client with a trusted certificate: %s", who)
            return
        if profile == "secure":
            path = self.record(self.rejected, der, cert)
            where = path or self.rejected
            log.warning(
                "OPC UA client refused: certificate of %s is not trusted; it is in %s, move it to %s to trust it",
                who,
                where,
                self.trusted,
            )
            raise ServiceError(ua.StatusCodes.BadSecurityChecksFailed)
        path = self.record(self.accepted, der, cert)
        if path is not None:
            log.warning("OPC UA client certificate of %s accepted on first use, recorded as %s", who, path)


def _leaf(der: bytes | None) -> bytes | None:
    """The DER of the first certificate of a certificate or chain (as asyncua keeps the channel's)."""
    if not der:
        return None
    try:
        return uacrypto.der_from_x509(uacrypto.x509_from_der(der))
    except ValueError:
        return None


def _token_kind(token: Any) -> TokenKind:
    if isinstance(token, ua.UserNameIdentityToken):
        return "username"
    if isinstance(token, ua.X509IdentityToken):
        return "x509"
    return "anonymous"


def _guard_sessions(server: Server, check: Callable[[bytes, ua.ApplicationDescription | None], None]) -> None:
    """Refuse sessions on SecurityPolicy None channels and check each client's proven certificate."""
    iserver = server.iserver
    create = iserver.create_session

    def create_session(*args: Any, **kwargs: Any) -> Any:
        session = create(*args, **kwargs)
        if session.external:
            _guard(session, check)
        return session

    iserver.create_session = create_session  # type: ignore[method-assign]


def _guard(session: Any, check: Callable[[bytes, ua.ApplicationDescription | None], None]) -> None:
    state: dict[str, Any] = {}
    create = session.create_session
    activate = session.activate_session

    async def create_session(params: ua.CreateSessionParameters, *args: Any, **kwargs: Any) -> Any:
        state["certificate"] = _leaf(params.ClientCertificate)
        state["description"] = params.ClientDescription
        return await create(params, *args, **kwargs)

    def activate_session(params: ua.ActivateSessionParameters, peer_certificate: bytes | None) -> Any:
        if not peer_certificate:
            log.warning("OPC UA session refused: SecurityPolicy None is not allowed in this profile")
            raise ServiceError(ua.StatusCodes.BadSecurityPolicyRejected)
        bound = state.get("bound")
        if bound is None:
            if state.get("certificate") != peer_certificate:
                log.warning("OPC UA session refused: CreateSession certificate differs from the channel's")
                raise ServiceError(ua.StatusCodes.BadSecurityChecksFailed)
            check(peer_certificate, state.get("description"))
            state["bound"] = peer_certificate
        elif bound != peer_certificate:
            log.warning("OPC UA session refused: reactivated from a channel with another certificate")
            raise ServiceError(ua.StatusCodes.BadSecurityChecksFailed)
        token = identity_token.set(_token_kind(params.UserIdentityToken))
        try:
            return activate(params, peer_certificate)
        finally:
            identity_token.reset(token)

    session.create_session = create_session
    session.activate_session = activate_session


def _refuse_registration(server: Server) -> None:
    """simline is no discovery server: asyncua would let anyone register servers, without a session."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        log.warning("OPC UA RegisterServer refused: this server is not a discovery server")
        raise ServiceError(ua.StatusCodes.BadServiceUnsupported)

    server.iserver.register_server = refuse  # type: ignore[method-assign]
    server.iserver.register_server2 = refuse  # type: ignore[method-assign]


async def apply_security(server: Server, config: SecurityConfig | None) -> None:
    """Configure endpoints, certificates, identity tokens, users and permissions for a profile.

    Call after ``server.init()`` and ``server.set_endpoint()``, before building the address space and starting.

    Raises:
        ValueError: Unknown profile, or an invalid users file.
    """
    config = config or SecurityConfig(profile="open")
    if config.profile not in PROFILES:
        raise ValueError(f"unknown OPC UA security profile {config.profile!r}: use one of {', '.join(PROFILES)}")
    server.allow_remote_admin(False)
    _refuse_registration(server)
    hostname = socket.gethostname()
    uri = application_uri(hostname)
    await server.set_application_uri(uri)

    if config.profile == "open":
        log.warning("OPC UA security profile 'open': no encryption, anonymous clients may write and call methods")
        if config.users_file is not None:
            log.warning("OPC UA profile 'open' ignores the users file %s (anonymous access only)", config.users_file)
        server.set_security_policy(
            [ua.SecurityPolicyType.NoSecurity], permission_ruleset=ReadOnlyAnonymousRuleset(anonymous_writes=True)
        )
        server.set_identity_tokens([ua.AnonymousIdentityToken])
        server.iserver.set_user_manager(SimlineUserManager(None, allow_anonymous=True))
        return

    pki = Pki(Path(config.state_dir) / "pki")
    endpoint_host = server.endpoint.hostname or ""
    cert_path, key_path = ensure_server_certificate(pki.own, uri, hostname, (endpoint_host,))
    await server.load_certificate(str(cert_path))
    await server.load_private_key(str(key_path))
    secure = config.profile == "secure"
    server.set_security_policy(
        [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt, ua.SecurityPolicyType.Basic256Sha256_Sign],
        permission_ruleset=ReadOnlyAnonymousRuleset(anonymous_writes=False),
    )
    tokens: list[type] = [ua.UserNameIdentityToken, ua.X509IdentityToken]
    if not secure:
        tokens.insert(0, ua.AnonymousIdentityToken)
    server.set_identity_tokens(tokens)
    users = SimlineUserManager(config.users_file, allow_anonymous=not secure, user_certs=pki.user_certs)
    server.iserver.set_user_manager(users)
    profile: Profile = config.profile

    def check(der: bytes, description: ua.ApplicationDescription | None) -> None:
        pki.check_client(profile, der, description)

    _guard_sessions(server, check)
    log.info(
        "OPC UA security profile %r: Basic256Sha256 Sign/SignAndEncrypt, %s, %d users, state in %s",
        profile,
        "trusted client certificates only, no anonymous access"
        if secure
        else "client certificates trusted on first use, anonymous read-only",
        len(users.users),
        pki.root,
    )
    if secure and not users.users and not pki.user_certs():
        log.warning("OPC UA profile 'secure' has no users: add some with 'simline users add' or no one can log in")
