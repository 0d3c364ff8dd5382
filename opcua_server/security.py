"""Security profiles of the OPC UA server (being completed: default and secure profiles)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from asyncua import Server, ua
from asyncua.crypto.permission_rules import USER_TYPES, PermissionRuleset, User, UserRole

__all__ = ["READ_ONLY_TYPES", "ReadOnlyAnonymousRuleset", "SecurityConfig", "apply_security"]

log = logging.getLogger("simline.opcua")

Profile = Literal["open", "default", "secure"]

_WRITE_TYPES = {
    ua.ObjectIds.WriteRequest_Encoding_DefaultBinary,
    ua.ObjectIds.CallRequest_Encoding_DefaultBinary,
}
READ_ONLY_TYPES = [t for t in USER_TYPES if t not in _WRITE_TYPES]
"""Requests an anonymous (or viewer) user may make: browse, read, subscribe, history read; not write or call."""


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


async def apply_security(server: Server, config: SecurityConfig | None) -> None:
    """Configure endpoints, identity tokens, users and permissions for a profile."""
    config = config or SecurityConfig(profile="open")
    if config.profile != "open":
        raise NotImplementedError("only the open profile is available yet")
    log.warning("OPC UA security profile 'open': no encryption, anonymous clients may write and call methods")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity], permission_ruleset=ReadOnlyAnonymousRuleset(True))
    server.set_identity_tokens([ua.AnonymousIdentityToken])
