"""The dashboard as a live adapter: the feed on the live loop, the Dash app served by waitress in its own threads.

``start()`` builds the feed and the app and binds the port (a port in use is a clear error at once);
``stop()`` closes the server and the feed. :attr:`DashboardServer.urls` says where the pages are.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
import threading
from dataclasses import dataclass
from typing import Any

import segno

from dashboards.app import PageInfo, create_app
from dashboards.bridge import Bridge
from dashboards.feed import Feed
from simline.errors import SimlineError
from simline.live.driver import LiveDriver
from simline.overlays import Alternative

__all__ = ["DashboardOptions", "DashboardServer", "kiosk_url", "qr_data_uri"]

log = logging.getLogger("simline.dashboard")


class DashboardError(SimlineError):
    """The dashboard cannot start (e.g. its port is in use)."""


@dataclass
class DashboardOptions:
    """Where and how the dashboard is served."""

    host: str = "127.0.0.1"
    port: int = 8050
    kiosk_url: str | None = None  # None: derived from host and port (the LAN address when host is 0.0.0.0)
    trainer_key: str | None = None  # None: none on loopback, a random one otherwise
    update_ms: int = 1000
    threads: int = 8


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lan_address() -> str:
    """This machine's address on its local network (no packet is sent), or ``127.0.0.1`` without one."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
        return str(s.getsockname()[0])
    return "127.0.0.1"


def kiosk_url(host: str, port: int) -> str:
    """The kiosk's address as a phone should open it."""
    shown = lan_address() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/kiosk"


def qr_data_uri(text: str) -> str:
    """A QR code of ``text`` as an SVG data URI (dark on white, with a quiet zone a phone camera needs)."""
    return str(segno.make(text, error="m").svg_data_uri(scale=6, border=4, dark="#000", light="#fff"))


def products_of(driver: LiveDriver) -> dict[str, tuple[str, dict[str, list[dict[str, str]]]]]:
    """The product families and their choices as the kiosk offers them (with any extra price)."""

    def label(choice: str, extra: float) -> str:
        text = choice.replace("_", " ")
        return f"{text} (+{extra:g} €)" if extra else text

    return {
        p.family: (
            p.name or p.family,
            {
                name: [{"label": label(c, o.price_extra.get(c, 0.0)), "value": c} for c in o.choices]
                for name, o in p.options.items()
            },
        )
        for p in driver.line.scenario.products
    }


def _shutdown(server: Any) -> None:
    """Stop a waitress server: let the worker threads finish their requests, then close every connection, the
    listening socket and the wake-up pipe (the server's loop ends when nothing is left to watch)."""
    from waitress import wasyncore

    server.task_dispatcher.shutdown(timeout=5)
    wasyncore.close_all(getattr(server, "_map", None) or getattr(server, "map", None))


class DashboardServer:
    """The live dashboard of a driver's line(s).

    Args:
        driver: The live driver.
        options: Host, port and the rest.
        alternative: The twin's investment, if ``simline live --twin`` runs one.
    """

    def __init__(self, driver: LiveDriver, options: DashboardOptions, alternative: Alternative | None = None) -> None:
        self.driver = driver
        self.options = options
        self.alternative = alternative
        self.feed: Feed | None = None
        self.bridge: Bridge | None = None
        self.trainer_key = options.trainer_key
        if self.trainer_key is None and not is_loopback(options.host):
            self.trainer_key = secrets.token_urlsafe(9)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = options.port
        self.urls: dict[str, str] = {}

    async def start(self) -> None:
        """Start the feed and serve the pages.

        Raises:
            DashboardError: The address cannot be bound.
        """
        from waitress.server import create_server

        o = self.options
        loop = asyncio.get_running_loop()
        self.feed = feed = Feed(self.driver, self.alternative)
        self.bridge = bridge = Bridge(loop, self.driver, feed)
        labels = [lf.label for lf in feed.lines]
        holder: dict[str, Any] = {}

        def wsgi(environ: Any, start_response: Any) -> Any:  # the app is built once the port is known
            return holder["app"](environ, start_response)

        try:
            server = create_server(wsgi, host=o.host, port=o.port, threads=o.threads, ident="simline", _start=False)
        except OSError as exc:
            raise DashboardError(
                f"cannot serve the dashboard on {o.host}:{o.port}: {exc.strerror or exc}; "
                "choose another --dashboard-port or --no-dashboard"
            ) from None
        self.port = int(getattr(server, "effective_port", o.port))
        url_host = "127.0.0.1" if o.host in ("0.0.0.0", "::", "") else o.host
        kiosk = o.kiosk_url or kiosk_url(o.host, self.port)
        info = PageInfo(
            title=self.driver.line.scenario.name,
            products=products_of(self.driver),
            kiosk_url=kiosk,
            qr_src=qr_data_uri(kiosk),
            trainer_key=self.trainer_key,
            update_ms=o.update_ms,
            labels=labels,
        )
        holder["app"] = create_app(feed, bridge, info).server
        await feed.start()
        server.accept_connections()
        self._server = server
        self._thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
        self._thread.start()
        base = f"http://{url_host}:{self.port}/"
        self.urls = {
            "Dashboard": base + (f"?key={self.trainer_key}" if self.trainer_key else ""),
            "Kiosk": kiosk,
        }

    async def stop(self) -> None:
        """Stop serving and stop the feed."""
        if self._server is not None:
            # In a thread: requests in flight may still need the live loop (Bridge.call) to finish.
            await asyncio.to_thread(_shutdown, self._server)
            self._server = None
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
            self._thread = None
        if self.feed is not None:
            await self.feed.stop()

    @property
    def description(self) -> str:
        """Where the dashboard is, for the start-up message."""
        return self.urls.get("Dashboard", "")
