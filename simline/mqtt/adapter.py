"""The MQTT adapter of a live line: the embedded broker when no broker is named, and the chosen profile."""

from __future__ import annotations

import logging
import secrets

from simline.live.driver import LiveDriver
from simline.mqtt.broker import EmbeddedBroker
from simline.mqtt.config import BrokerAddress, MqttOptions
from simline.mqtt.delivery import PublisherStats
from simline.mqtt.sparkplug import SparkplugProfile
from simline.mqtt.topics import DEFAULT_GROUP, DEFAULT_ROOT, SparkplugTopics, UnsTopics, slug
from simline.mqtt.uns import UnsProfile

__all__ = ["MqttAdapter"]

log = logging.getLogger("simline.mqtt")


class MqttAdapter:
    """Publishes a live line over MQTT (started and stopped by ``LiveApp``).

    Args:
        driver: The live driver of the line.
        options: The MQTT options.
    """

    def __init__(self, driver: LiveDriver, options: MqttOptions) -> None:
        self.driver = driver
        self.options = options
        self.line_id = options.line_id or slug(driver.line.scenario.name)
        if options.profile == "uns":
            self.topics: UnsTopics | SparkplugTopics = UnsTopics(options.root or DEFAULT_ROOT, self.line_id)
        else:
            self.topics = SparkplugTopics(options.root or DEFAULT_GROUP, self.line_id)
        self.broker: EmbeddedBroker | None = None
        self.profile: UnsProfile | SparkplugProfile | None = None
        self.address: BrokerAddress | None = options.broker

    async def start(self, wait: float = 3.0) -> None:
        """Start the embedded broker if needed, then the profile; wait up to ``wait`` s for the first connection.

        A broker that cannot be reached does not stop the line: the adapter keeps trying in the background.

        Raises:
            OSError: The embedded broker cannot listen on its address.
        """
        o = self.options
        address = o.broker
        if address is None:
            self.broker = EmbeddedBroker(o.embedded_host, o.embedded_port)
            await self.broker.start()
            host = "127.0.0.1" if o.embedded_host in ("0.0.0.0", "", "::") else o.embedded_host
            address = BrokerAddress(host, self.broker.port)
        self.address = address
        client_id = address.client_id or f"simline-{self.line_id[:40]}-{secrets.token_hex(4)}"
        if isinstance(self.topics, UnsTopics):
            self.profile = UnsProfile(self.driver, address, o, self.topics, client_id)
        else:
            self.profile = SparkplugProfile(self.driver, address, o, self.topics, client_id)
        if not await self.profile.start(wait):
            log.warning(
                "MQTT: not connected to %s yet (%s); publishing as soon as it can be reached",
                address.display(),
                self.profile.publisher.stats.last_error or "no answer",
            )

    async def stop(self) -> None:
        """Stop publishing (status offline / NDEATH) and the embedded broker."""
        if self.profile is not None:
            await self.profile.stop()
        if self.broker is not None:
            await self.broker.stop()

    @property
    def stats(self) -> PublisherStats | None:
        """The publisher's counters (``None`` before :meth:`start`)."""
        return self.profile.publisher.stats if self.profile is not None else None

    @property
    def description(self) -> str:
        """Where the line is published, for the console: broker URL, profile and topic filter."""
        address = self.address.display() if self.address is not None else "?"
        where = f"{address} (embedded broker)" if self.broker is not None else address
        if isinstance(self.topics, UnsTopics):
            return f"{where}  topics {self.topics.base}/#"
        return f"{where}  Sparkplug B group {self.topics.group}, edge node {self.topics.node}"
