"""Where the MQTT adapter connects and how it behaves: broker URLs, the embedded broker's address, the options.

Broker URLs are ``mqtt://[user[:password]@]host[:port]`` (port 1883) or ``mqtts://…`` (TLS, port 8883), with optional
query parameters ``ca`` (a CA file instead of the system's trust store), ``insecure=1`` (no certificate checks;
tests only) and ``client_id``. A user without a password in the URL takes it from ``SIMLINE_MQTT_PASSWORD`` (so it
stays out of the process list).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from simline.errors import SimlineError

__all__ = [
    "PROFILES",
    "BrokerAddress",
    "MqttConfigError",
    "MqttOptions",
    "Profile",
    "parse_bind",
    "parse_broker_url",
    "simulated_epoch",
]

Profile = Literal["uns", "sparkplug"]
PROFILES: tuple[Profile, ...] = ("uns", "sparkplug")
PASSWORD_ENV = "SIMLINE_MQTT_PASSWORD"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class MqttConfigError(SimlineError):
    """An MQTT option (broker URL, bind address, topic root) is not valid."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """A broker to connect to.

    Attributes:
        host: Host name or IP address.
        port: TCP port.
        tls: Connect with TLS (``mqtts://``).
        username: User name, if the broker wants one.
        password: Password (never shown by :meth:`display`).
        ca_file: CA certificates to trust instead of the system's store (TLS only).
        insecure: Skip certificate and host name checks (TLS only; for tests).
        client_id: MQTT client id; default ``simline-<line>-<random>``.
    """

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    insecure: bool = False
    client_id: str | None = None

    def display(self) -> str:
        """The URL without the password."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"


def parse_broker_url(url: str, env: Mapping[str, str] | None = None) -> BrokerAddress:
    """Parse ``mqtt://`` or ``mqtts://`` URLs (see the module docstring).

    Raises:
        MqttConfigError: The URL is not one of these forms.
    """
    env = os.environ if env is None else env
    parts = urlsplit(url.strip())
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise MqttConfigError(f"broker URL must start with mqtt:// or mqtts://, got '{url}'")
    tls = parts.scheme in ("mqtts", "ssl")
    if not parts.hostname:
        raise MqttConfigError(f"broker URL has no host: '{url}'")
    if parts.path not in ("", "/"):
        raise MqttConfigError(f"broker URL must not have a path: '{url}'")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise MqttConfigError(f"broker URL has an invalid port: '{url}'") from None
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"ca", "insecure", "client_id"})
    if unknown:
        raise MqttConfigError(f"unknown broker URL parameter(s) {', '.join(unknown)} (known: ca, insecure, client_id)")
    ca = query.get("ca", [""])[-1]
    if ca and not tls:
        raise MqttConfigError("'ca' needs an mqtts:// URL")
    if ca and not Path(ca).is_file():
        raise MqttConfigError(f"CA file not found: {ca}")
    insecure = query.get("insecure", ["0"])[-1].lower() in ("1", "true", "yes")
    client_id = query.get("client_id", [""])[-1] or None
    if client_id is not None and not _CLIENT_ID.match(client_id):
        raise MqttConfigError("client_id must be 1 to 64 characters of A-Z a-z 0-9 _ . : -")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if username and password is None:
        password = env.get(PASSWORD_ENV)
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=username,
        password=password,
        ca_file=Path(ca) if ca else None,
        insecure=insecure,
        client_id=client_id,
    )


def parse_bind(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``PORT`` or ``HOST:PORT`` (``[::1]:PORT`` for IPv6) as ``(host, port)``.

    Raises:
        MqttConfigError: Not one of these forms, or the port is outside 0 … 65535.
    """
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = default_host, text
    host = host.strip("[]") or default_host
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise MqttConfigError(f"expected PORT or HOST:PORT with a port 0 to 65535, got '{text}'")
    return host, int(port_text)


def simulated_epoch(now: datetime | None = None) -> datetime:
    """The wall-clock date of simulated minute 0: Monday 00:00 UTC of the current week (as the OPC UA server)."""
    now = now or datetime.now(UTC)
    return (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class MqttOptions:
    """Everything the MQTT adapter can be told.

    Attributes:
        broker: The broker to publish to; ``None`` starts the embedded broker.
        embedded_host: Address the embedded broker binds to (loopback unless told otherwise).
        embedded_port: Port of the embedded broker.
        profile: ``uns`` (JSON, one tag per message) or ``sparkplug`` (Sparkplug B protobuf).
        root: UNS: the topic levels above the line (``enterprise/site/area``); Sparkplug: the group id.
        line_id: The line's topic level (UNS) or edge node id (Sparkplug); default: the scenario name as a slug.
        sample_interval: Wall seconds between telemetry samples (published when changed).
        kpi_interval: Wall seconds between KPI updates.
        stats_interval: Wall seconds between publisher statistics (and gap reports).
        buffer_messages: Messages kept while the broker is away or the socket is backed up; then drop (see docs).
        max_backlog: Messages handed to the client and not yet written to its socket, at most.
        event_qos: QoS of events (states, alarms, order lifecycle). Replies, the status, statistics and gap
            reports always use QoS 1.
        sample_qos: QoS of sampled values (telemetry, KPIs).
        keepalive: MQTT keep-alive, seconds.
        reconnect_min: First reconnect delay, seconds (doubles per failed attempt, with jitter).
        reconnect_max: Longest reconnect delay, seconds.
        connect_timeout: Seconds to wait for the TCP/TLS connection and the broker's CONNACK.
        command_max_bytes: Longest accepted order or command message.
        command_rate: Orders and commands accepted per second (token bucket), over all clients.
        command_burst: Burst size of the token bucket.
        epoch: Wall-clock date of simulated minute 0 (default: :func:`simulated_epoch`).
    """

    broker: BrokerAddress | None = None
    embedded_host: str = "127.0.0.1"
    embedded_port: int = 1883
    profile: Profile = "uns"
    root: str | None = None
    line_id: str | None = None
    sample_interval: float = 1.0
    kpi_interval: float = 2.0
    stats_interval: float = 1.0
    buffer_messages: int = 10_000
    max_backlog: int = 2_000
    event_qos: int = 0
    sample_qos: int = 0
    keepalive: int = 30
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    connect_timeout: float = 10.0
    command_max_bytes: int = 8192
    command_rate: float = 20.0
    command_burst: int = 40
    epoch: datetime | None = None

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise MqttConfigError(f"profile must be one of {', '.join(PROFILES)}, got '{self.profile}'")
        for name in ("sample_interval", "kpi_interval", "stats_interval", "reconnect_min", "connect_timeout"):
            if not getattr(self, name) > 0:
                raise MqttConfigError(f"{name} must be positive")
        if self.reconnect_max < self.reconnect_min:
            raise MqttConfigError("reconnect_max must not be below reconnect_min")
        if self.buffer_messages < 1 or self.max_backlog < 1 or self.command_max_bytes < 64:
            raise MqttConfigError("buffer_messages and max_backlog must be >= 1, command_max_bytes >= 64")
        if self.event_qos not in (0, 1, 2) or self.sample_qos not in (0, 1, 2):
            raise MqttConfigError("QoS must be 0, 1 or 2")
        if not 0 <= self.embedded_port <= 65535:
            raise MqttConfigError(f"embedded broker port must be 0 to 65535, got {self.embedded_port}")
