"""Users of the OPC UA server: a JSON users file with scrypt password hashes, and an asyncua user manager.

The users file (``--users``, managed with :func:`add_user` and :func:`remove_user`) is JSON::

    {
      "version": 1,
      "users": [
        {
          "name": "alice",
          "role": "operator",
          "password": {
            "algorithm": "scrypt", "n": 16384, "r": 8, "p": 5, "dklen": 32,
            "salt": "<base64, 16 random bytes>", "hash": "<base64>"
          }
        }
      ]
    }

Roles: ``viewer`` may browse, read, subscribe and read history; ``operator`` may also write setpoints and call
methods (PlaceOrder, InjectFault, Reset, Acknowledge). No plaintext password is stored, and no user or password
exists by default: without a users file, only anonymous access is possible (read-only in the default profile).
The file is written with mode 0600; the server rereads it when it changes, so users can be added while it runs.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from asyncua.crypto import uacrypto
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "NAME_PATTERN",
    "ROLES",
    "SimlineUserManager",
    "UserRecord",
    "add_user",
    "hash_password",
    "load_users",
    "remove_user",
    "verify",
]

log = logging.getLogger("simline.opcua")

Role = Literal["viewer", "operator"]
ROLES: tuple[str, ...] = ("viewer", "operator")
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.@-]{0,63}")
"""A user name: a letter, then up to 63 letters, digits, ``_``, ``.``, ``@`` or ``-``."""
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
FORMAT_VERSION = 1

# scrypt cost: 2**14 * 8 * 128 bytes = 16 MiB and ~50 ms per hash (the OWASP minimum is N=2**17 with r=8 p=1 or
# N=2**14 with r=8 p=5: p=5 multiplies the time, not the memory).
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 5
SCRYPT_DKLEN = 32
SALT_BYTES = 16
FAILURE_WINDOW = 60.0
MAX_FAILURES = 20
"""At most this many failed password logins per window (all names together); more are rejected unchecked."""
_MAX_N = 2**20  # bounds for parameters read from a file: a hash must not take seconds or gigabytes
_MAX_RP = 64


@dataclass(frozen=True)
class UserRecord:
    """One user of the users file."""

    name: str
    role: Role
    password: dict[str, Any]  # algorithm parameters, salt and hash; never the password


# --- validation ------------------------------------------------------------------------------------------
def _check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid user name {name!r}: use a letter followed by up to 63 letters, digits, '_', '.', '@' or '-'"
        )
    return name


def _check_role(role: object) -> Role:
    if role not in ROLES:
        raise ValueError(f"invalid role {role!r}: must be one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def _check_password(password: object) -> str:
    if not isinstance(password, str):
        raise ValueError("the password must be a string")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password is too short: at least {MIN_PASSWORD_LENGTH} characters are required")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"the password is too long: at most {MAX_PASSWORD_LENGTH} characters")
    return password


def _check_params(params: object, where: str) -> dict[str, Any]:
    if not isinstance(params, dict) or params.get("algorithm") != "scrypt":
        raise ValueError(f"{where}: the password must be a scrypt hash ({{'algorithm': 'scrypt', ...}})")
    n, r, p, dklen = (params.get(k) for k in ("n", "r", "p", "dklen"))
    if not (isinstance(n, int) and 2 <= n <= _MAX_N and n & (n - 1) == 0):
        raise ValueError(f"{where}: scrypt n must be a power of 2 up to {_MAX_N}")
    if not (isinstance(r, int) and 1 <= r <= _MAX_RP and isinstance(p, int) and 1 <= p <= _MAX_RP):
        raise ValueError(f"{where}: scrypt r and p must be integers from 1 to {_MAX_RP}")
    if not (isinstance(dklen, int) and 16 <= dklen <= 64):
        raise ValueError(f"{where}: scrypt dklen must be 16 to 64")
    try:
        salt = base64.b64decode(params["salt"], validate=True)
        digest = base64.b64decode(params["hash"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: salt and hash must be base64 strings") from exc
    if len(salt) < 16 or len(digest) != dklen:
        raise ValueError(f"{where}: the salt must have at least 16 bytes and the hash dklen bytes")
    return params


# --- hashing ---------------------------------------------------------------------------------------------
def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    data = unicodedata.normalize("NFC", password).encode("utf-8")
    return hashlib.scrypt(data, salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=256 * n * r + 2**20)


def hash_password(password: str) -> dict[str, Any]:
    """The scrypt parameters, random salt and hash of a password (validated first)."""
    _check_password(password)
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)
    return {
        "algorithm": "scrypt",
        "n": SCRYPT_N,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "dklen": SCRYPT_DKLEN,
        "salt": base64.b64encode(salt).decode("ascii"),
        "hash": base64.b64encode(digest).decode("ascii"),
    }


def _matches(params: dict[str, Any], password: str) -> bool:
    salt = base64.b64decode(params["salt"])
    expected = base64.b64decode(params["hash"])
    digest = _scrypt(password, salt, params["n"], params["r"], params["p"], params["dklen"])
    return hmac.compare_digest(digest, expected)


_DUMMY: dict[str, Any] | None = None


def _dummy_params() -> dict[str, Any]:
    """A hash to check unknown names against, so a wrong name costs as long as a wrong password."""
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = hash_password(secrets.token_urlsafe(24))
    return _DUMMY


# --- the users file --------------------------------------------------------------------------------------
def load_users(path: Path | str | None) -> dict[str, UserRecord]:
    """The users of a users file by name; no file (or ``None``) means no users.

    Raises:
        ValueError: The file is not a valid users file (the message names the problem).
    """
    if path is None:
        return {}
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a JSON users file: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("users"), list):
        raise ValueError(f'{path}: expected {{"version": 1, "users": [...]}}')
    if data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported users file version {data.get('version')!r}")
    users: dict[str, UserRecord] = {}
    for i, entry in enumerate(data["users"]):
        where = f"{path}: users[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object with name, role and password")
        if "password" in entry and isinstance(entry["password"], str):
            raise ValueError(f"{where}: a plaintext password is not allowed; set it with add_user")
        try:
            name = _check_name(entry.get("name"))
            role = _check_role(entry.get("role"))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        params = _check_params(entry.get("password"), f"{where} ({name})")
        if name in users:
            raise ValueError(f"{where}: duplicate user {name!r}")
        users[name] = UserRecord(name, role, dict(params))
    if users:
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o077:
                log.warning("users file %s is readable by other users; chmod 600 it", path)
    return users


def _save(path: Path, users: dict[str, UserRecord]) -> None:
    data = {
        "version": FORMAT_VERSION,
        "users": [{"name": u.name, "role": u.role, "password": u.password} for u in users.values()],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_user(path: Path | str, name: str, password: str, role: str, *, replace: bool = False) -> UserRecord:
    """Add a user to a users file (created if missing), or with ``replace`` change an existing one.

    Raises:
        ValueError: Invalid name, role or password, or the user exists and ``replace`` is false.
    """
    path = Path(path)
    _check_name(name)
    checked_role = _check_role(role)
    _check_password(password)
    users = load_users(path)
    if name in users and not replace:
        raise ValueError(f"user {name!r} already exists in {path}")
    record = UserRecord(name, checked_role, hash_password(password))
    users[name] = record
    _save(path, users)
    return record


def remove_user(path: Path | str, name: str) -> None:
    """Remove a user from a users file.

    Raises:
        ValueError: No such user.
    """
    path = Path(path)
    users = load_users(path)
    if name not in users:
        raise ValueError(f"no user {name!r} in {path}")
    del users[name]
    _save(path, users)


def verify(users: dict[str, UserRecord], name: str | None, password: str | None) -> Role | None:
    """The role of a user whose password is right, else ``None`` (unknown name or wrong password).

    Unknown names cost as long as known ones, and hashes are compared in constant time.
    """
    record = users.get(name) if isinstance(name, str) else None
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return None
    if record is None:
        _matches(_dummy_params(), password)
        return None
    return record.role if _matches(record.password, password) else None


# --- the asyncua user manager ----------------------------------------------------------------------------
TokenKind = Literal["anonymous", "username", "x509"]
identity_token: contextvars.ContextVar[TokenKind | None] = contextvars.ContextVar("identity_token", default=None)
"""The kind of identity token being activated, set by the session guard of :mod:`opcua_server.security`
(asyncua passes the channel's certificate for anonymous tokens and the user's for X509 tokens the same way)."""


def _leaf_der(certificate: Any) -> bytes | None:
    """The DER of a certificate given as DER (or a DER chain: its first certificate) or as an x509 object."""
    if certificate is None:
        return None
    try:
        cert = certificate if hasattr(certificate, "public_bytes") else uacrypto.x509_from_der(bytes(certificate))
        return uacrypto.der_from_x509(cert) or None
    except (TypeError, ValueError):
        return None


class SimlineUserManager(UserManager):
    """Maps OPC UA identities to asyncua users.

    * anonymous: ``UserRole.Anonymous`` (what it may do is up to the permission ruleset), if allowed;
    * user name and password from the users file: operator → ``UserRole.User`` (write, call), viewer →
      ``UserRole.Anonymous`` with the user's name (read-only); a wrong password or unknown name → rejected;
    * X509 user certificate: operator if it is one of ``user_certs()`` (``pki/users/``), else rejected.

    Never returns ``UserRole.Admin``.
    """

    def __init__(
        self,
        users_file: Path | None,
        *,
        allow_anonymous: bool,
        user_certs: Callable[[], set[bytes]] | None = None,
    ) -> None:
        self.users_file = Path(users_file) if users_file is not None else None
        self.allow_anonymous = allow_anonymous
        self._user_certs = user_certs or set
        self._users: dict[str, UserRecord] = {}
        self._stamp: tuple[int, ...] | None = None
        self._loaded = False
        self._failures: deque[float] = deque()
        self.reload()

    def reload(self) -> None:
        """Reread the users file if it changed; a broken file keeps the previous users and logs an error.

        Raises:
            ValueError: The users file is invalid when first read.
        """
        if self.users_file is None:
            return
        try:
            st = self.users_file.stat()
            stamp: tuple[int, ...] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if self._loaded and stamp == self._stamp:
            return
        try:
            users = load_users(self.users_file)
        except (OSError, ValueError) as exc:
            if not self._loaded:
                raise
            log.error("users file not reloaded, keeping %d users: %s", len(self._users), exc)
            return
        if self._loaded and users != self._users:
            log.info("OPC UA users reloaded: %d from %s", len(users), self.users_file)
        self._stamp, self._users, self._loaded = stamp, users, True

    @property
    def users(self) -> dict[str, UserRecord]:
        return self._users

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        kind = identity_token.get() or ("username" if username is not None else "anonymous")
        if kind == "username":
            self.reload()
            now = time.monotonic()
            while self._failures and now - self._failures[0] > FAILURE_WINDOW:
                self._failures.popleft()
            if len(self._failures) >= MAX_FAILURES:
                # each check blocks the event loop for a fraction of a second: bound what guessing can cost
                log.warning("OPC UA login rejected for user %r: too many failed logins, try again later", username)
                return None
            role = verify(self._users, username, password)
            if role is None:
                self._failures.append(now)
                log.warning("OPC UA login rejected for user %r: unknown user or wrong password", username)
                return None
            log.info("OPC UA login: %s (%s)", username, role)
            return User(role=UserRole.User if role == "operator" else UserRole.Anonymous, name=username)
        if kind == "x509":
            der = _leaf_der(certificate)
            if der and der in self._user_certs():
                name = f"x509:{hashlib.sha1(der, usedforsecurity=False).hexdigest()[:16]}"
                log.info("OPC UA login with a user certificate: %s (operator)", name)
                return User(role=UserRole.User, name=name)
            log.warning("OPC UA login rejected: user certificate not in the trusted user certificates")
            return None
        if not self.allow_anonymous:
            return None
        return User(role=UserRole.Anonymous)
