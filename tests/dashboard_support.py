"""A live line with its dashboard, run in a background thread for browser tests (the test drives the browser)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from simline.live.app import LiveApp, LiveOptions
from simline.scenario.loader import load_scenario

T = TypeVar("T")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "dashboard"


class LiveDashboard:
    """``simline live`` with the dashboard on a free loopback port, OPC UA and MQTT off, in its own thread.

    Use as a context manager; :meth:`call` runs a function on the live loop (to read the model safely).
    """

    def __init__(self, scenario: Path, **options: Any) -> None:
        options.setdefault("opcua", False)
        options.setdefault("mqtt", False)
        options.setdefault("dashboard_port", 0)
        self.options = LiveOptions(**options)
        self.scenario = load_scenario(scenario)
        self.app: LiveApp | None = None
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="live-dashboard", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.app = LiveApp(self.scenario, self.options)
            self.loop.run_until_complete(self.app.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self.loop.run_until_complete(self.app.run())
        finally:
            self.loop.close()

    def __enter__(self) -> LiveDashboard:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error
        assert self.app is not None, "the live line did not start within 60 s"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.app is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.app.driver.stop)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the live line did not stop"

    @property
    def url(self) -> str:
        """The dashboard's address (with the trainer key when there is one)."""
        assert self.app is not None
        return self.app.urls["Dashboard"]

    @property
    def base(self) -> str:
        """The dashboard's address without query."""
        return self.url.split("?")[0]

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the live loop and return its result (through the dashboard's own bridge)."""
        assert self.app is not None
        return self.app.adapters[0].bridge.call(fn, *args)  # type: ignore[no-any-return]

    def sim_minutes(self) -> float:
        """The simulated time now."""
        assert self.app is not None
        return self.call(lambda: self.app.line.env.now)  # type: ignore[union-attr]

    def feed_seq(self) -> int:
        """The sequence number of the dashboard's latest snapshot."""
        assert self.app is not None
        return int(self.app.adapters[0].feed.latest.seq)


def screenshot(driver: Any, name: str) -> Path:
    """Save the whole page as test-artifacts/dashboard/<name>.png (kept for a person to look at)."""
    import base64

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True, "fromSurface": True})
    path.write_bytes(base64.b64decode(shot["data"]))  # the whole page, not only the visible part
    return path


def console_errors(driver: Any) -> list[str]:
    """The browser console's errors since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` every 50 ms until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
