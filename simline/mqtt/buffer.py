"""The publisher's bounded buffer, its drop policy, and the record of gaps it leaves in the per-topic sequences.

Messages wait here while the broker is away or the client's socket is backed up. Two classes share the capacity:
*events* (states, alarms, order lifecycle, replies, status) and *samples* (telemetry and KPIs, which the next
sample supersedes). When the buffer is full, the oldest sample is dropped; only when no sample is left, the oldest
event. Both classes keep their own first-in first-out order, and :meth:`OutBuffer.pop` returns messages in the
order they were pushed, so every topic's messages leave in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["GapLog", "Message", "OutBuffer"]


@dataclass(slots=True)
class Message:
    """One message waiting to be published.

    Attributes:
        topic: Topic name.
        payload: Encoded payload.
        qos: MQTT QoS.
        retain: Retain flag.
        seq: The message's number in its topic's sequence, or -1 when its payload carries none.
        sample: True for a sampled value (dropped before events).
        index: Push order.
    """

    topic: str
    payload: bytes
    qos: int
    retain: bool
    seq: int
    sample: bool
    index: int = 0


class OutBuffer:
    """A bounded buffer with the drop policy of the module docstring.

    Args:
        capacity: Messages held at most.
        on_drop: Called with every message dropped to make room.
    """

    def __init__(self, capacity: int, on_drop: Callable[[Message], None]) -> None:
        self.capacity = capacity
        self.on_drop = on_drop
        self._events: deque[Message] = deque()
        self._samples: deque[Message] = deque()
        self._pushed = 0
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._events) + len(self._samples)

    def push(self, message: Message) -> None:
        """Add a message, dropping the oldest sample (else the oldest event) when full."""
        message.index = self._pushed
        self._pushed += 1
        (self._samples if message.sample else self._events).append(message)
        size = len(self._events) + len(self._samples)
        if size > self.capacity:
            self.on_drop((self._samples or self._events).popleft())
            size -= 1
        if size > self.high_water:
            self.high_water = size

    def pop(self) -> Message | None:
        """The oldest message of both classes, or ``None`` when empty."""
        events, samples = self._events, self._samples
        if events and (not samples or events[0].index < samples[0].index):
            return events.popleft()
        if samples:
            return samples.popleft()
        return None

    def clear(self) -> list[Message]:
        """Remove and return every message, in push order."""
        out = sorted([*self._events, *self._samples], key=lambda m: m.index)
        self._events.clear()
        self._samples.clear()
        return out


class GapLog:
    """Per-topic ranges of sequence numbers that did not reach the broker.

    ``dropped`` ranges were certainly not published (the buffer was full, or the client refused them); ``uncertain``
    ranges were handed to a connection that broke before the broker confirmed them, so they may be lost.
    """

    def __init__(self) -> None:
        self.dropped: dict[str, list[list[int]]] = {}
        self.uncertain: dict[str, list[list[int]]] = {}

    @staticmethod
    def _add(ranges: dict[str, list[list[int]]], topic: str, seq: int) -> None:
        spans = ranges.get(topic)
        if spans is None:
            ranges[topic] = [[seq, seq]]
        elif spans[-1][1] + 1 == seq:
            spans[-1][1] = seq
        else:
            spans.append([seq, seq])

    def add_dropped(self, topic: str, seq: int) -> None:
        """Record a message that was not published."""
        self._add(self.dropped, topic, seq)

    def add_uncertain(self, topic: str, seq: int) -> None:
        """Record a message that may be lost."""
        self._add(self.uncertain, topic, seq)

    @property
    def pending(self) -> bool:
        """True when gaps were recorded and not yet taken."""
        return bool(self.dropped or self.uncertain)

    def take(self, max_topics: int = 1000) -> dict[str, Any]:
        """A report of the recorded gaps of at most ``max_topics`` topics of each kind, which are then forgotten.

        ``more`` is true when gaps of further topics remain for the next report.
        """

        def split(ranges: dict[str, list[list[int]]]) -> dict[str, list[list[int]]]:
            return {topic: ranges.pop(topic) for topic in list(ranges)[:max_topics]}

        def count(ranges: dict[str, list[list[int]]]) -> int:
            return sum(last - first + 1 for spans in ranges.values() for first, last in spans)

        dropped, uncertain = split(self.dropped), split(self.uncertain)
        return {
            "dropped": dropped,
            "uncertain": uncertain,
            "dropped_count": count(dropped),
            "uncertain_count": count(uncertain),
            "more": self.pending,
        }
