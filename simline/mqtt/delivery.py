"""What the publisher knows about delivery: its counters, the will, reconnect delays, and broker confirmations.

The broker confirms through QoS 1 acknowledgements: its PUBACK of a message means that it received everything
written before that message on the same connection. :class:`Confirmations` remembers every numbered message handed
to the client until such a PUBACK covers it; when the connection breaks, what is left may be lost, and is reported
as an *uncertain* gap.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import paho.mqtt.client as mqtt

__all__ = ["Confirmations", "PublisherStats", "Will", "backoff_delay", "published"]

MARKER_EVERY = 256
"""Hand-offs between two remembered QoS>0 messages (the confirmation markers)."""
MAX_UNCONFIRMED = 500_000
"""Numbered hand-offs remembered at most (without any confirmation, the oldest are forgotten)."""


@dataclass(frozen=True, slots=True)
class Will:
    """The last will registered with a connection."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(slots=True)
class PublisherStats:
    """Counters of the publisher since it started."""

    connected: bool = False
    published: int = 0  # handed to the client
    dropped: int = 0  # dropped from the full buffer or refused by the client: certain gaps
    uncertain: int = 0  # handed to a connection that broke before the broker confirmed them
    discarded: int = 0  # session-bound messages thrown away while disconnected (Sparkplug)
    buffered: int = 0
    buffer_high_water: int = 0
    connects: int = 0
    disconnects: int = 0
    connect_failures: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The counters as a JSON-ready mapping."""
        return asdict(self)


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (0-based): uniform in ``[d/2, d]``,
    ``d = min(high, low · 2^attempt)``."""
    d = min(high, low * 2.0 ** min(attempt, 30))
    return rng.uniform(d / 2.0, d)


def published(info: mqtt.MQTTMessageInfo) -> bool:
    """Whether the client has finished with a message (QoS 0: written; QoS 1: acknowledged; refused: True)."""
    try:
        return info.is_published()
    except (ValueError, RuntimeError):
        return True


class Confirmations:
    """Numbered messages handed to the current connection that the broker has not confirmed yet."""

    def __init__(self) -> None:
        self._count = 0
        self._unconfirmed: deque[tuple[int, str, int]] = deque()
        self._markers: deque[tuple[mqtt.MQTTMessageInfo, int]] = deque()
        self._last_marker = -MARKER_EVERY
        self.last_qos: mqtt.MQTTMessageInfo | None = None

    def __len__(self) -> int:
        return len(self._unconfirmed)

    def handed(self, topic: str, seq: int, qos: int, info: mqtt.MQTTMessageInfo) -> None:
        """Record a message handed to the client (``seq`` -1: not numbered)."""
        self._count += 1
        if seq >= 0:
            self._unconfirmed.append((self._count, topic, seq))
        if qos:
            self.last_qos = info
            if self._count - self._last_marker >= MARKER_EVERY or not self._markers:
                self._markers.append((info, self._count))
                self._last_marker = self._count

    def confirm(self) -> None:
        """Forget what acknowledged markers cover."""
        markers, unconfirmed = self._markers, self._unconfirmed
        while markers and published(markers[0][0]):
            _, upto = markers.popleft()
            while unconfirmed and unconfirmed[0][0] <= upto:
                unconfirmed.popleft()
        while len(unconfirmed) > MAX_UNCONFIRMED:
            unconfirmed.popleft()

    def lost(self) -> list[tuple[str, int]]:
        """The connection broke: ``(topic, seq)`` of everything unconfirmed, then start afresh."""
        out = [(topic, seq) for _, topic, seq in self._unconfirmed]
        self._unconfirmed.clear()
        self._markers.clear()
        self.last_qos = None
        return out
