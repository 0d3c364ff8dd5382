"""Shared pytest fixtures. Each section belongs to one area of the tests; add new fixtures in their own section."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# --------------------------------------------------------------------------------------------------------------
# Headless Chromium (selenium) for browser tests of the HTML report (tests/test_report.py)
# --------------------------------------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_PACKAGES = "chromium chromium-driver"


def _require_external() -> bool:
    return os.environ.get("SIMLINE_REQUIRE_EXTERNAL") == "1"


def _unavailable(reason: str) -> None:
    """Skip the test, or fail it where external programs are required (CI sets SIMLINE_REQUIRE_EXTERNAL=1)."""
    if _require_external():
        pytest.fail(
            f"{reason}; SIMLINE_REQUIRE_EXTERNAL=1 requires it. Install it with: "
            f"apt-get install -y {CHROMIUM_PACKAGES}",
            pytrace=False,
        )
    pytest.skip(f"{reason} (apt-get install {CHROMIUM_PACKAGES})")


@pytest.fixture
def chromium_driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium WebDriver that never downloads anything (explicit browser and driver paths).

    Browser console messages of every level are kept (``driver.get_log("browser")``).
    """
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        _unavailable(f"{' and '.join(missing)} not found")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("the selenium package is not installed (pip install -e '.[test]')")
    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------
# Live line served over OPC UA (tests/test_opcua.py)
#
# pytest-asyncio is not a test dependency, so the async tests are plain functions that call ``asyncio.run``; the
# ``opcua_line`` fixture hands them an async context manager that builds and serves the line inside that loop.
# --------------------------------------------------------------------------------------------------------------

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def free_tcp_port() -> int:
    """A loopback TCP port that was free a moment ago (bind to port 0 and let the kernel choose)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _RecordsHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class LiveLine:
    """A line running live (``LiveDriver``) and served over OPC UA on a loopback port, in the current loop.

    Attributes:
        events: Every event the model emitted, in order (the recorder is attached before the first step).
        initial_states: ``(station, machine index) -> effective state`` before the first step (no event is
            emitted for a machine's initial state).
        log: Warnings and errors logged by ``asyncua`` and ``simline`` while the line ran.
    """

    scenario: Any
    line: Any
    driver: Any
    server: Any
    url: str
    events: list[Any]
    initial_states: dict[tuple[str, int], Any]
    log: list[logging.LogRecord]
    run_task: asyncio.Task[None]

    def server_errors(self) -> list[str]:
        """Errors and exceptions in the server's log (a rejected command must not leave any)."""
        return [f"{r.name}: {r.getMessage()}" for r in self.log if r.levelno >= logging.ERROR or r.exc_info is not None]


@pytest.fixture
def opcua_line() -> Callable[..., AbstractAsyncContextManager[LiveLine]]:
    """Factory of live lines served over OPC UA: ``async with opcua_line("quickstart", speed=1200) as live:``.

    Builds ``Line(scenario, live=True)`` with an event recorder, a ``LiveDriver`` at ``speed`` and a
    ``LineServer`` (open security profile, ``server_options`` passed on) on ``opc.tcp://127.0.0.1:<free>/simline``,
    starts them in the running loop and stops them on exit. On a clean exit it also checks that the driver did
    not crash and that neither the server nor the model logged an error.
    """
    asyncua = pytest.importorskip("asyncua", reason="asyncua is not installed (the OPC UA server needs it)")
    del asyncua
    from opcua_server.security import SecurityConfig
    from opcua_server.server import LineServer
    from simline import load_scenario
    from simline.live.driver import LiveDriver
    from simline.sim import Line

    @contextlib.asynccontextmanager
    async def start(
        scenario: str = "quickstart",
        speed: float = 1200.0,
        security: Any = None,
        **server_options: Any,
    ) -> AsyncIterator[LiveLine]:
        spec = load_scenario(SCENARIOS / f"{scenario}.yaml")
        events: list[Any] = []
        line = Line(spec, observers=[events.append], live=True)
        initial = {(m.station.id, m.index): m.effective_state for m in line.machines}
        driver = LiveDriver(line, speed=speed)
        handler = _RecordsHandler()
        loggers = [logging.getLogger(name) for name in ("asyncua", "simline")]
        for logger in loggers:
            logger.addHandler(handler)
        server = None
        run_task: asyncio.Task[None] | None = None
        try:
            for attempt in range(3):  # the free port may be taken between the probe and the bind
                url = f"opc.tcp://127.0.0.1:{free_tcp_port()}/simline"
                server = LineServer(driver, url, security or SecurityConfig(profile="open"), **server_options)
                try:
                    await server.start()
                    break
                except OSError:
                    with contextlib.suppress(Exception):
                        await server.server.stop()
                    if attempt == 2:
                        raise
            assert server is not None
            run_task = asyncio.create_task(driver.run(), name="live-driver")
            live = LiveLine(spec, line, driver, server, url, events, initial, handler.records, run_task)
            yield live
            assert not run_task.done(), f"the live driver stopped early: {run_task}"
        finally:
            driver.stop()
            if run_task is not None:
                await asyncio.wait_for(run_task, timeout=10)
            if server is not None:
                await server.stop()
            for logger in loggers:
                logger.removeHandler(handler)
        assert not live.server_errors(), "\n".join(live.server_errors())

    return start


# --------------------------------------------------------------------------------------------------------------
# A real Mosquitto broker for the MQTT tests (tests/test_mqtt*.py)
#
# Started by the test on a free loopback port with a generated configuration (persistence on, so a restart keeps
# the sessions of persistent subscribers; no queue limits, so a slow test subscriber loses nothing); ``stop()`` and
# ``start()`` let a test restart it mid-run. Missing /usr/sbin/mosquitto skips the test, or fails it where
# SIMLINE_REQUIRE_EXTERNAL=1 (CI installs the Debian package).
# --------------------------------------------------------------------------------------------------------------

MOSQUITTO = Path("/usr/sbin/mosquitto")


class MosquittoBroker:
    """A Mosquitto process on ``127.0.0.1:port``; its configuration, database and log live in ``folder``."""

    def __init__(self, folder: Path, port: int, settings: str = "", anonymous: bool = True) -> None:
        """``settings``: further configuration lines for the listener (e.g. TLS files); ``anonymous``: allow clients
        without a user name."""
        self.folder = folder
        self.port = port
        self.conf = folder / "mosquitto.conf"
        self.log = folder / "mosquitto.log"
        self.process: Any = None
        import getpass

        self.conf.write_text(
            f"listener {port} 127.0.0.1\n"
            f"{settings}"
            f"user {getpass.getuser()}\n"  # as root, mosquitto would switch to 'mosquitto' and not write in folder
            f"allow_anonymous {'true' if anonymous else 'false'}\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "max_queued_messages 0\n"
            "queue_qos0_messages true\n"
            "max_inflight_messages 0\n"
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\n",
            encoding="utf-8",
        )

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:<port>``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start the process and wait until it accepts TCP connections."""
        import socket
        import subprocess
        import time

        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                self.process = None
                raise RuntimeError(f"mosquitto exited at start: {err}{log[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"mosquitto did not accept connections on port {self.port} within {timeout:g} s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM: it saves its database), killing it if it does not exit in time."""
        import subprocess

        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """A running Mosquitto on a free loopback port, stopped after the test."""
    if not MOSQUITTO.exists():
        reason = f"{MOSQUITTO} not found"
        if _require_external():
            pytest.fail(f"{reason}; SIMLINE_REQUIRE_EXTERNAL=1 requires it (apt-get install mosquitto)", pytrace=False)
        pytest.skip(f"{reason} (apt-get install mosquitto)")
    folder = tmp_path_factory.mktemp("mosquitto")
    broker = None
    for attempt in range(3):  # the free port may be taken between the probe and the bind
        broker = MosquittoBroker(folder, free_tcp_port())
        try:
            broker.start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
    assert broker is not None
    try:
        yield broker
    finally:
        broker.stop()
