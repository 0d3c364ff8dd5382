"""The live demonstrator assembled: the model, its driver and the protocol adapters on one asyncio loop.

This is the composition root of live mode (called by ``simline live``); nothing else wires the model to the
adapters.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simline.live.driver import LiveDriver
from simline.overlays import alternative
from simline.scenario.model import Scenario
from simline.sim.line import Line

__all__ = ["LiveApp", "LiveOptions"]


@dataclass
class LiveOptions:
    """Everything ``simline live`` can be told."""

    speed: float = 60.0
    duration_seconds: float | None = None
    seed: int | None = None
    opcua: bool = True
    opcua_endpoint: str = "opc.tcp://0.0.0.0:4840/simline"
    security: str = "default"
    state_dir: Path = field(default_factory=lambda: Path(".simline-state"))
    users_file: Path | None = None
    nodesets: Path | None = None
    mqtt: bool = True
    mqtt_url: str | None = None  # None: the embedded broker on mqtt_bind:mqtt_port
    mqtt_bind: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_profile: str = "uns"
    mqtt_root: str | None = None
    dashboard: bool = True
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8050
    kiosk_url: str | None = None
    trainer_key: str | None = None
    twin: str | None = None  # an investment (or a+b) to run side by side with the baseline


class LiveApp:
    """One live line (and its investment twin, if asked for) with its adapters.

    Raises:
        ScenarioError: The twin's investment is unknown or does not fit the scenario.
    """

    def __init__(self, scenario: Scenario, options: LiveOptions) -> None:
        self.scenario = scenario
        self.options = options
        self.line = Line(scenario, seed=options.seed, live=True)
        self.alternative = alternative(scenario, options.twin) if options.twin else None
        twins = [Line(self.alternative.scenario, seed=options.seed, live=True)] if self.alternative else []
        self.driver = LiveDriver(self.line, speed=options.speed, twins=twins)
        self.adapters: list[Any] = []
        self.urls: dict[str, str] = {}

    async def start(self) -> None:
        """Start every adapter (the model does not advance yet); if one fails, stop those already started."""
        try:
            await self._start_adapters()
        except BaseException:
            await self.stop()
            raise

    async def _start_adapters(self) -> None:
        if self.options.dashboard:
            from dashboards.server import DashboardOptions, DashboardServer

            o = self.options
            dashboard = DashboardServer(
                self.driver,
                DashboardOptions(
                    host=o.dashboard_host, port=o.dashboard_port, kiosk_url=o.kiosk_url, trainer_key=o.trainer_key
                ),
                self.alternative,
            )
            await dashboard.start()
            self.adapters.append(dashboard)
            self.urls.update(dashboard.urls)
        if self.options.opcua:
            from opcua_server.security import SecurityConfig
            from opcua_server.server import LineServer

            security = SecurityConfig(
                profile=self.options.security,  # type: ignore[arg-type]
                state_dir=self.options.state_dir,
                users_file=self.options.users_file,
            )
            server = LineServer(self.driver, self.options.opcua_endpoint, security, nodesets=self.options.nodesets)
            await server.start()
            self.adapters.append(server)
            self.urls["OPC UA"] = self.options.opcua_endpoint
        if self.options.mqtt:
            from simline.mqtt import MqttAdapter, MqttOptions, parse_broker_url

            o = self.options
            mqtt_options = MqttOptions(
                broker=parse_broker_url(o.mqtt_url) if o.mqtt_url else None,
                embedded_host=o.mqtt_bind,
                embedded_port=o.mqtt_port,
                profile=o.mqtt_profile,  # type: ignore[arg-type]
                root=o.mqtt_root,
            )
            adapter = MqttAdapter(self.driver, mqtt_options)
            await adapter.start()
            self.adapters.append(adapter)
            self.urls["MQTT"] = adapter.description

    async def stop(self) -> None:
        """Stop the adapters in reverse order."""
        for adapter in reversed(self.adapters):
            with contextlib.suppress(Exception):
                await adapter.stop()

    async def start_adapters_then_print(self, show: Callable[[dict[str, str]], None]) -> None:
        """Start the adapters, show where they are, and move what was built out of the garbage collector's way.

        Everything built so far lives as long as the run: frozen, it stays out of the collector's full passes,
        whose pauses (~0.1 s with a long line and its dashboard) would stall the shared loop.
        """
        await self.start()
        show(self.urls)
        gc.freeze()

    async def run(self, status: Callable[[LiveApp], None] | None = None, status_every: float = 5.0) -> None:
        """Run until the duration has passed or Ctrl-C (starting the adapters if needed), then stop cleanly."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.driver.stop)
        if not self.adapters and not self.urls:
            await self.start()
        reporter = asyncio.create_task(self._report(status, status_every)) if status else None
        try:
            await self.driver.run(duration_seconds=self.options.duration_seconds)
        finally:
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            await self.stop()
            gc.unfreeze()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)

    async def _report(self, status: Callable[[LiveApp], None], every: float) -> None:
        while True:
            await asyncio.sleep(every)
            status(self)
