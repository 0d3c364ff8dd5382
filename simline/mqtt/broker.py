"""The embedded MQTT broker (amqtt), started in-process when no broker is named, so a demo needs no setup.

It runs on the live line's event loop and is bound to loopback (127.0.0.1) unless told otherwise. It allows
anonymous clients, keeps retained messages in memory only and has no TLS: it is for a demo on one machine or a
trusted network. It shares the CPU with the simulation; for many stations or many subscribers use Mosquitto
(see ``docs/mqtt.md``).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

__all__ = ["EmbeddedBroker"]

log = logging.getLogger("simline.mqtt")


class EmbeddedBroker:
    """An amqtt broker with one TCP listener.

    Args:
        host: Address to bind to (default loopback).
        port: TCP port.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._broker: Any = None

    @property
    def url(self) -> str:
        """``mqtt://host:port`` of the listener."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{host}:{self.port}"

    async def start(self) -> None:
        """Start listening.

        Raises:
            OSError: The address cannot be bound (e.g. another broker listens on the port).
        """
        from amqtt.broker import Broker
        from amqtt.errors import BrokerError

        for name in ("amqtt", "transitions"):  # their INFO and WARNING lines would drown the status lines
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.ERROR)
        bind = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        config = {
            "listeners": {"default": {"type": "tcp", "bind": bind, "max_connections": 1000}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = Broker(config)
        try:
            await broker.start()
        except BrokerError as exc:
            cause = exc.__cause__
            detail = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause or exc)
            raise OSError(
                f"the embedded MQTT broker cannot listen on {self.host}:{self.port} ({detail}); is another broker "
                f"running there? Publish to it with --mqtt mqtt://{self.host}:{self.port}, pick another port with "
                "--mqtt-port, or use --no-mqtt"
            ) from None
        self._broker = broker
        if self.port == 0:  # an ephemeral port: read the one the kernel chose
            with contextlib.suppress(Exception):
                self.port = int(broker._servers["default"].instance.sockets[0].getsockname()[1])
        log.info("embedded MQTT broker listening on %s", self.url)

    async def stop(self) -> None:
        """Stop listening and drop every session."""
        broker, self._broker = self._broker, None
        if broker is not None:
            with contextlib.suppress(Exception):
                await broker.shutdown()
