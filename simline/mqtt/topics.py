"""Topic names: the ISA-95 Unified Namespace tree of the default profile and the Sparkplug B namespace.

Every name that becomes a topic level is checked here (no ``/``, ``+``, ``#``, NUL, no leading ``$``), so a
scenario or an option can never produce a wildcard or a level a broker would refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from simline.mqtt.config import MqttConfigError
from simline.scenario.model import Scenario

__all__ = [
    "DEFAULT_GROUP",
    "DEFAULT_ROOT",
    "REQUEST_ID",
    "SparkplugTopics",
    "UnsTopics",
    "check_level",
    "check_root",
    "machine_names",
    "slug",
]

DEFAULT_ROOT = "simline/demo/production"
"""Default ``enterprise/site/area`` above the line."""
DEFAULT_GROUP = "simline"
"""Default Sparkplug group id."""
REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
"""Client-chosen request ids, used as the last level of reply topics."""
_FORBIDDEN = re.compile(r"[/+#\x00]")
_SLUG = re.compile(r"[^a-z0-9_-]+")
MAX_LEVEL = 64


def slug(text: str) -> str:
    """``text`` as a topic level: lower case, runs of other characters than ``a-z0-9_-`` become ``_``."""
    out = _SLUG.sub("_", text.lower()).strip("_")[:MAX_LEVEL]
    return out or "line"


def check_level(name: str, what: str = "topic level") -> str:
    """Return ``name`` if it is a valid single topic level.

    Raises:
        MqttConfigError: Empty, too long, starts with ``$`` or holds ``/ + #`` or NUL.
    """
    if not name or len(name) > MAX_LEVEL or name.startswith("$") or _FORBIDDEN.search(name) or name != name.strip():
        raise MqttConfigError(
            f"{what} '{name}' is not a valid topic level (1 to {MAX_LEVEL} characters, no / + # or NUL, "
            "no leading $ or spaces)"
        )
    return name


def check_root(root: str) -> str:
    """Return ``root`` (``enterprise/site/area``, one or more levels) if every level is valid.

    Raises:
        MqttConfigError: A level is not valid.
    """
    for level in root.split("/"):
        check_level(level, "root level")
    return root


def machine_names(scenario: Scenario) -> list[tuple[str, str, int]]:
    """``(machine name, station id, machine index)`` for every machine, in line order.

    The name is the station id, or ``<station>_<n>`` (from 1) for parallel machines: the same names as the OPC UA
    address space.
    """
    out = []
    for st in scenario.stations:
        for i in range(st.machines):
            out.append((st.id if st.machines == 1 else f"{st.id}_{i + 1}", st.id, i))
    return out


@dataclass(frozen=True, slots=True)
class UnsTopics:
    """The topics of one line in the Unified Namespace: ``<root>/<line>/…``."""

    root: str
    line: str

    def __post_init__(self) -> None:
        check_root(self.root)
        check_level(self.line, "line id")

    @property
    def base(self) -> str:
        """``<root>/<line>``."""
        return f"{self.root}/{self.line}"

    def line_tag(self, tag: str) -> str:
        """A tag of the line, e.g. ``status`` or ``kpi/oee``."""
        return f"{self.root}/{self.line}/{tag}"

    def station_tag(self, machine: str, tag: str) -> str:
        """A tag of a machine (station level), e.g. ``state``."""
        return f"{self.root}/{self.line}/{machine}/{tag}"

    def lifecycle(self, order_id: str) -> str:
        """The event stream of one order."""
        return f"{self.root}/{self.line}/orders/{order_id}/lifecycle"

    @property
    def orders_new(self) -> str:
        """Where custom orders come in."""
        return self.line_tag("orders/new")

    def order_reply(self, request_id: str | None) -> str:
        """Where the reply to an order request goes (per request id, or the shared topic without one)."""
        return self.line_tag("orders/status" if request_id is None else f"orders/status/{request_id}")

    def command(self, machine: str, command: str) -> str:
        """Where a station command comes in."""
        return self.station_tag(machine, f"cmd/{command}")

    def command_reply(self, machine: str, request_id: str | None) -> str:
        """Where the reply to a station command goes."""
        return self.station_tag(machine, "cmd/status" if request_id is None else f"cmd/status/{request_id}")

    @property
    def subscriptions(self) -> list[str]:
        """The topic filters the line subscribes to (orders and station commands)."""
        return [self.orders_new, f"{self.base}/+/cmd/+"]

    def parse_command(self, topic: str) -> tuple[str, str] | None:
        """``(machine, command)`` of a station command topic, else ``None``."""
        prefix = self.base + "/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        if len(parts) == 3 and parts[1] == "cmd":
            return parts[0], parts[2]
        return None


@dataclass(frozen=True, slots=True)
class SparkplugTopics:
    """Sparkplug B 3.0 topics of one edge node: ``spBv1.0/<group>/<type>/<node>[/<device>]``."""

    group: str
    node: str
    NAMESPACE = "spBv1.0"

    def __post_init__(self) -> None:
        check_level(self.group, "Sparkplug group id")
        check_level(self.node, "Sparkplug edge node id")

    def node_topic(self, kind: str) -> str:
        """``NBIRTH``, ``NDEATH``, ``NDATA`` or ``NCMD`` of the node."""
        return f"{self.NAMESPACE}/{self.group}/{kind}/{self.node}"

    def device_topic(self, kind: str, device: str) -> str:
        """``DBIRTH``, ``DDEATH``, ``DDATA`` or ``DCMD`` of a device."""
        return f"{self.NAMESPACE}/{self.group}/{kind}/{self.node}/{device}"

    @property
    def subscriptions(self) -> list[str]:
        """NCMD of the node and DCMD of all its devices."""
        return [self.node_topic("NCMD"), f"{self.NAMESPACE}/{self.group}/DCMD/{self.node}/+"]

    def parse(self, topic: str) -> tuple[str, str | None] | None:
        """``(message type, device or None)`` of a topic of this node, else ``None``."""
        parts = topic.split("/")
        if len(parts) not in (4, 5) or parts[0] != self.NAMESPACE or parts[1] != self.group or parts[3] != self.node:
            return None
        return parts[2], (parts[4] if len(parts) == 5 else None)
