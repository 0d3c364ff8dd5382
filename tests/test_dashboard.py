"""The live dashboard in a real headless Chromium: the big-screen page, the kiosk, trainer controls, the twin.

Each test runs ``simline live`` (dashboard only) on a free loopback port in a background thread and waits for
what the page must show with explicit conditions (never a fixed sleep). Screenshots of every view are kept in
test-artifacts/dashboard/ for a person to look at.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from dashboard_support import LiveDashboard, console_errors, screenshot, wait_until
from mqtt_support import SCENARIOS, free_port

QUICKSTART = SCENARIOS / "quickstart.yaml"
TIMEOUT = 30.0


def wait(driver: Any, condition: Callable[[Any], Any], message: str, timeout: float = TIMEOUT) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``message`` after ``timeout``."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException, WebDriverException)
    ).until(condition, message)


def text_of(driver: Any, css: str) -> str:
    """The visible text of the element at ``css`` ("" while there is none), read in one step (the page re-renders
    some elements)."""
    text = driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css)
    return str(text).strip()


def attribute(driver: Any, css: str, name: str) -> str | None:
    """An attribute of the element at ``css``, read in one step."""
    script = "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;"
    return driver.execute_script(script, css, name)  # type: ignore[no-any-return]


def click(driver: Any, css: str) -> None:
    """Click the element in one step in the page (it may be re-rendered between finding and clicking)."""
    if not driver.execute_script("const e = document.querySelector(arguments[0]); if (e) e.click(); return !!e;", css):
        raise AssertionError(f"nothing to click at {css}")


def cards(driver: Any, css: str) -> list[list[str]]:
    """``[id, data-state]`` of the elements matching ``css``, read in one step (the page re-renders them)."""
    script = "return [...document.querySelectorAll(arguments[0])].map(e => [e.id, e.dataset.state || ''])"
    return list(driver.execute_script(script, css))


def rows(driver: Any, css: str) -> list[list[str]]:
    """``[text, class, data-status]`` of the elements matching ``css``, read in one step."""
    script = (
        "return [...document.querySelectorAll(arguments[0])]"
        ".map(e => [e.innerText, e.className, e.dataset.status || ''])"
    )
    return list(driver.execute_script(script, css))


def changes(driver: Any, css: str, before: str) -> Callable[[Any], str | bool]:
    def changed(d: Any) -> str | bool:
        now = text_of(d, css)
        return now if now and now != before else False

    return changed


def test_main_page_shows_the_line_and_kpis_change(chromium_driver: Any) -> None:
    """The big-screen page loads without console errors, shows every station coloured by a machine state, and
    its KPI tiles and clock change as the simulation runs."""
    from selenium.webdriver.common.by import By

    driver = chromium_driver
    with LiveDashboard(QUICKSTART, speed=1200) as live:
        driver.get(live.url)
        wait(driver, lambda d: text_of(d, "#clock").startswith("Day"), "the clock never showed")
        stations = wait(driver, lambda d: cards(d, "#l0-line .station"), "no station cards")
        assert [i for i, _ in stations] == ["l0-station-cut", "l0-station-engrave", "l0-station-pack"]
        states = {state for _, state in stations}
        assert states <= {"processing", "setup", "idle", "blocked", "down", "maintenance", "off_shift", "standby"}
        clock = text_of(driver, "#clock")
        wait(driver, changes(driver, "#clock", clock), "the simulated clock did not advance on the page")
        wip = text_of(driver, "#kpi-throughput-value")
        wait(driver, changes(driver, "#kpi-throughput-value", wip), "the throughput tile never changed")
        finished = wait(
            driver,
            lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-status='done'], tr[data-status='late']"),
            "no completed order appeared in the order list",
        )
        assert finished
        titles = [text for text, _, _ in rows(driver, ".tile-title")]
        assert [t.split()[0] for t in titles] == ["OEE", "Throughput", "WIP", "On-time", "Energy", "Scrap"]
        telemetry = wait(
            driver,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#telemetry-graph .scatterlayer .trace"),
            "the telemetry chart has no traces",
        )
        assert len(telemetry) >= 4  # power, condition, temperature, vibration of the cutter
        screenshot(driver, "main")
        assert console_errors(driver) == []


def test_kiosk_order_is_listed_followed_and_completed(chromium_driver: Any) -> None:
    """A visitor orders a large engraved plate on a phone-sized kiosk, gets its number, follows it to completion;
    the big screen lists it as a visitor's order and follows it when clicked."""
    from selenium.webdriver.common.by import By

    driver = chromium_driver
    with LiveDashboard(QUICKSTART, speed=600) as live:
        driver.set_window_size(412, 915)
        driver.get(live.base + "kiosk")
        wait(driver, lambda d: d.find_elements(By.XPATH, "//label[contains(., 'large')]"), "no 'large' choice")
        driver.find_element(By.XPATH, "//label[contains(., 'large')]").click()
        driver.find_element(
            By.XPATH, "//div[contains(@class,'kiosk-field')][.//label[text()='Engraving']]//label[contains(., 'yes')]"
        ).click()
        screenshot(driver, "kiosk-choose")
        click(driver, "#kiosk-place")
        order_id = wait(driver, lambda d: text_of(d, "#kiosk-order-id"), "the kiosk gave no order number")
        assert f"order={order_id}" in driver.current_url
        order = live.call(lambda: live.app.line.orders.get(order_id))
        if order is not None:  # still in the line: it is exactly what the visitor chose
            assert dict(order.variant.options) == {"size": "large", "engraving": "yes"}
        wait(driver, lambda d: "Order " + order_id in text_of(d, "#order-card"), "the kiosk does not follow the order")
        screenshot(driver, "kiosk-follow")
        status = wait(
            driver,
            lambda d: (
                attribute(d, "#order-card .order-status", "data-status") in ("done", "late")
                and attribute(d, "#order-card .order-status", "data-status")
            ),
            "the order never completed",
        )
        assert status in ("done", "late")
        assert "100 %" in text_of(driver, "#order-card .progress")
        screenshot(driver, "kiosk-done")

        driver.set_window_size(1400, 1000)
        driver.get(live.url)
        row = wait(driver, lambda d: rows(d, f"#order-row-{order_id}"), "the order is not in the list")
        assert "origin-kiosk" in row[0][1]
        assert row[0][2] == status
        click(driver, f"#order-link-{order_id}")
        wait(driver, lambda d: "Order " + order_id in text_of(d, "#order-card"), "clicking the order did not follow it")
        assert "Laser cutter → Engraving station → Packing" in text_of(driver, "#order-card .order-route")
        screenshot(driver, "orders")
        assert console_errors(driver) == []


def test_trainer_pauses_changes_speed_and_injects_a_fault(chromium_driver: Any) -> None:
    """Trainer controls: pause holds the simulated clock, resume releases it, speed changes the pace, a fault
    turns the station red with an alarm and a reset repairs it; a bad speed is refused and changes nothing."""
    from selenium.webdriver.common.by import By

    driver = chromium_driver
    with LiveDashboard(QUICKSTART, speed=600) as live:
        driver.get(live.url)
        wait(driver, lambda d: text_of(d, "#run-state") == "running", "the page did not show a running line")
        click(driver, "#trainer summary")
        click(driver, "#btn-pause")
        wait(driver, lambda d: text_of(d, "#run-state") == "paused", "pause did not show")
        held = live.sim_minutes()
        seq = live.feed_seq()
        wait(driver, lambda d: live.feed_seq() >= seq + 3, "the feed stopped refreshing")
        assert live.sim_minutes() == held, "the simulated clock moved while paused"
        clock = text_of(driver, "#clock")
        click(driver, "#btn-resume")
        wait(driver, changes(driver, "#clock", clock), "the clock did not move after resume")

        speed = driver.find_element(By.CSS_SELECTOR, "#speed-input")
        speed.clear()
        speed.send_keys("1800")
        click(driver, "#btn-speed")
        wait(driver, lambda d: text_of(d, "#speed-text") == "speed 1800×", "the new speed was not shown")
        assert live.call(lambda: live.app.driver.speed) == 1800

        speed.clear()
        speed.send_keys("999999")
        click(driver, "#btn-speed")
        message = wait(
            driver,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#trainer-message .error"),
            "a speed out of range was not refused",
        )
        assert "speed" in message[0].text and "between" in message[0].text
        assert live.call(lambda: live.app.driver.speed) == 1800

        minutes = driver.find_element(By.CSS_SELECTOR, "#fault-minutes")
        minutes.send_keys("5000")
        click(driver, "#btn-fault")
        wait(driver, lambda d: attribute(d, "#l0-station-cut", "data-state") == "down", "the cutter never went down")
        assert "Laser cutter" in text_of(driver, "#l0-alarms")
        screenshot(driver, "trainer-fault")
        click(driver, "#btn-reset")
        wait(driver, lambda d: attribute(d, "#l0-station-cut", "data-state") != "down", "reset did not repair it")
        assert text_of(driver, "#l0-alarms") == "No alarms"
        assert console_errors(driver) == []


def test_trainer_controls_need_the_key_when_one_is_set(chromium_driver: Any) -> None:
    """With a trainer key, the page without it cannot pause the line; the trainer's link with it can."""
    driver = chromium_driver
    with LiveDashboard(QUICKSTART, speed=600, trainer_key="s3cret") as live:
        assert live.url.endswith("?key=s3cret")
        driver.get(live.base)
        wait(driver, lambda d: text_of(d, "#run-state") == "running", "the page did not load")
        click(driver, "#trainer summary")
        click(driver, "#btn-pause")
        wait(driver, lambda d: "key" in text_of(d, "#trainer-message"), "no refusal without the key")
        assert live.call(lambda: live.app.driver.paused) is False
        driver.get(live.url)
        wait(driver, lambda d: text_of(d, "#run-state") == "running", "the page did not load")
        click(driver, "#trainer summary")
        click(driver, "#btn-pause")
        wait(driver, lambda d: text_of(d, "#run-state") == "paused", "the trainer's link could not pause")
        assert live.call(lambda: live.app.driver.paused) is True


def test_twin_shows_both_lines_and_the_money_difference_changes(chromium_driver: Any) -> None:
    """``--twin fiber_laser``: two line views, both lines' KPIs, and a running money difference that changes."""
    from selenium.webdriver.common.by import By

    driver = chromium_driver
    with LiveDashboard(QUICKSTART, speed=1800, twin="fiber_laser") as live:
        driver.get(live.url)
        titles = wait(
            driver,
            lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, ".line-title")] or False,
            "no line views",
        )
        assert titles == ["Baseline", "With fiber_laser"]
        assert len(cards(driver, "#l1-line .station")) == 3
        assert "With fiber_laser" in text_of(driver, "#kpi-oee-value-1")
        first = wait(driver, lambda d: text_of(d, "#money-net"), "no money figure")
        second = wait(driver, changes(driver, "#money-net", first), "the money difference did not change")
        wait(driver, changes(driver, "#money-net", second), "the money difference changed only once")
        assert text_of(driver, "#money-net-funded")
        screenshot(driver, "twin")
        assert console_errors(driver) == []


def test_qr_code_opens_the_kiosk(chromium_driver: Any) -> None:
    """The QR code on the big screen decodes (from a screenshot, as a phone camera would) to the kiosk address,
    and that address opens the kiosk."""
    import io

    import zxingcpp
    from PIL import Image
    from selenium.webdriver.common.by import By

    driver = chromium_driver
    with LiveDashboard(QUICKSTART, speed=60) as live:
        driver.get(live.url)
        qr = wait(driver, lambda d: d.find_element(By.ID, "kiosk-qr"), "no QR code")
        wait(driver, lambda d: qr.size["width"] > 50, "the QR code did not render")
        image = Image.open(io.BytesIO(qr.screenshot_as_png))
        decoded = [r.text for r in zxingcpp.read_barcodes(image)]
        assert decoded == [live.app.urls["Kiosk"]]
        assert decoded[0] == live.base + "kiosk"
        driver.get(decoded[0])
        wait(driver, lambda d: d.find_elements(By.ID, "kiosk-place"), "the QR code's address is not the kiosk")


def test_forged_kiosk_order_is_refused_and_the_line_keeps_running() -> None:
    """An order the kiosk would never offer (a choice not in the scenario), posted straight to the server, is
    refused with a message naming the option; the line keeps running."""
    with LiveDashboard(QUICKSTART, speed=1200) as live:
        body = {
            "output": "..kiosk-message.children...url.search..",
            "outputs": [{"id": "kiosk-message", "property": "children"}, {"id": "url", "property": "search"}],
            "inputs": [{"id": "kiosk-place", "property": "n_clicks", "value": 1}],
            "changedPropIds": ["kiosk-place.n_clicks"],
            "state": [
                {"id": "kiosk-family", "property": "value", "value": "plate"},
                [{"id": {"name": "size", "type": "kiosk-option"}, "property": "value", "value": "huge"}],
                [
                    {
                        "id": {"name": "size", "type": "kiosk-option"},
                        "property": "id",
                        "value": {"name": "size", "type": "kiosk-option"},
                    }
                ],
            ],
        }
        created = live.call(lambda: live.app.line.stats.orders_created)
        request = urllib.request.Request(
            live.base + "_dash-update-component", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            reply = json.loads(response.read())
        message = json.dumps(reply["response"]["kiosk-message"])
        assert "Order not placed" in message and "huge" in message and "size" in message
        assert "url" not in reply["response"]  # the page does not follow an order that does not exist
        before = live.sim_minutes()
        seq = live.feed_seq()
        assert wait_until(lambda: live.feed_seq() >= seq + 2, TIMEOUT), "the feed stopped after a bad order"
        assert live.sim_minutes() > before, "the line stopped after a bad order"
        assert live.call(lambda: live.app.line.stats.orders_created) >= created  # nothing broke the counters


def test_dashboard_port_in_use_is_a_clear_error() -> None:
    """A dashboard port that is taken stops start-up with a message naming the port and what to do."""
    import socket

    from simline.errors import SimlineError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(SimlineError, match=rf"127\.0\.0\.1:{port}.*--dashboard-port"):
            LiveDashboard(QUICKSTART, dashboard_port=port).__enter__()


def test_cli_prints_the_dashboard_and_kiosk_addresses_and_refuses_a_bad_twin() -> None:
    """``simline live`` prints the dashboard, kiosk, OPC UA and MQTT addresses in that order; an unknown twin
    investment or a taken dashboard port is a one-line error, not a traceback."""
    import socket

    from typer.testing import CliRunner

    from simline.cli import app

    runner = CliRunner()
    quickstart = str(QUICKSTART)
    port, mqtt_port = free_port(), free_port()
    result = runner.invoke(
        app,
        [
            "live",
            quickstart,
            "--duration",
            "1",
            "--no-opcua",
            "--dashboard-port",
            str(port),
            "--mqtt-port",
            str(mqtt_port),
            "--twin",
            "standby",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines() if line.startswith("  ")]
    assert [words[0] for words in lines[:3]] == ["Dashboard", "Kiosk", "MQTT"]
    assert lines[0][1] == f"http://127.0.0.1:{port}/" and lines[1][1] == f"http://127.0.0.1:{port}/kiosk"

    result = runner.invoke(app, ["live", quickstart, "--no-opcua", "--no-mqtt", "--twin", "robots"])
    assert result.exit_code == 2
    assert "'robots' is not an investment (known: standby, pdm_cut, fiber_laser)" in result.output
    assert "Traceback" not in result.output

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        result = runner.invoke(app, ["live", quickstart, "--no-opcua", "--no-mqtt", "--dashboard-port", str(taken)])
    assert result.exit_code == 1
    assert f"cannot serve the dashboard on 127.0.0.1:{taken}" in result.output and "--dashboard-port" in result.output


def test_kiosk_address_for_phones_and_trainer_key_off_loopback() -> None:
    """Phones get a routable kiosk address (never 0.0.0.0), IPv6 in brackets; a dashboard open to the network
    gets a random trainer key in its printed address, one on loopback needs none."""
    from dashboards.server import is_loopback, kiosk_url

    assert [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "192.168.1.5", "demo.local")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert kiosk_url("127.0.0.1", 9) == "http://127.0.0.1:9/kiosk"
    assert kiosk_url("::1", 9) == "http://[::1]:9/kiosk"
    lan = kiosk_url("0.0.0.0", 8050)
    assert "0.0.0.0" not in lan and lan.startswith("http://") and lan.endswith(":8050/kiosk")
    with LiveDashboard(QUICKSTART, dashboard_host="0.0.0.0") as live:
        assert live.app is not None
        key = views_query(live.url, "key")
        assert key and len(key) >= 12
        assert "0.0.0.0" not in live.app.urls["Kiosk"]
    with LiveDashboard(QUICKSTART) as live:
        assert "?key=" not in live.url


def views_query(url: str, name: str) -> str | None:
    from dashboards.views import query

    return query(url.partition("?")[2], name)
