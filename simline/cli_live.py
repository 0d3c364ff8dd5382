"""`simline live`: run a line paced to the wall clock with its dashboard, OPC UA server and MQTT publisher.

Registered on the `simline` application by :mod:`simline.cli`; this is where the live adapters are wired.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from simline.cli import SeedOption, _load, err, out
from simline.errors import SimlineError
from simline.scenario import Scenario

__all__ = ["live"]


def live(
    file: Annotated[Path, typer.Argument(help="Scenario file (YAML).", show_default=False)],
    speed: Annotated[
        float, typer.Option(min=0.1, max=100_000, help="Simulated seconds per wall second (60: a minute per second).")
    ] = 60.0,
    duration: Annotated[
        float | None, typer.Option(min=0.1, help="Stop after this many wall seconds (default: until Ctrl-C).")
    ] = None,
    seed: SeedOption = None,
    opcua_endpoint: Annotated[str, typer.Option(help="OPC UA endpoint to serve.")] = "opc.tcp://0.0.0.0:4840/simline",
    no_opcua: Annotated[bool, typer.Option("--no-opcua", help="Do not serve OPC UA.")] = False,
    security: Annotated[
        str,
        typer.Option(
            help="OPC UA security profile: open (no encryption, anonymous may write; demos only), default "
            "(encrypted, anonymous read-only, new client certificates accepted and recorded) or secure "
            "(encrypted, trusted client certificates and users only)."
        ),
    ] = "default",
    state_dir: Annotated[
        Path, typer.Option(help="Folder for the server certificate and trusted client certificates.")
    ] = Path(".simline-state"),
    users: Annotated[
        Path | None, typer.Option(help="Users file (see 'simline users --help'); without it only anonymous access.")
    ] = None,
    nodesets: Annotated[
        Path | None,
        typer.Option(
            help="Folder with the official OPC UA NodeSet2 files (Opc.Ua.Di.NodeSet2.xml, "
            "Opc.Ua.Machinery.NodeSet2.xml): machines then use the OPC 40001 Machinery types."
        ),
    ] = None,
    mqtt: Annotated[
        str | None,
        typer.Option(
            "--mqtt",
            metavar="URL",
            help="Publish to this MQTT broker: mqtt://[user[:password]@]host[:port], or mqtts://... for TLS "
            "(a password missing from the URL is read from SIMLINE_MQTT_PASSWORD). Default: start an embedded "
            "broker (see --mqtt-port).",
        ),
    ] = None,
    mqtt_port: Annotated[
        str,
        typer.Option(
            metavar="[HOST:]PORT",
            help="Address of the embedded MQTT broker: bound to 127.0.0.1 unless a host is given "
            "(0.0.0.0:1883 lets other machines in; it has no authentication).",
        ),
    ] = "1883",
    mqtt_profile: Annotated[
        str,
        typer.Option(
            help="MQTT topics and payloads: uns (ISA-95 Unified Namespace, one JSON tag per message) or "
            "sparkplug (Sparkplug B 3.0, protobuf)."
        ),
    ] = "uns",
    mqtt_root: Annotated[
        str | None,
        typer.Option(
            help="uns: the topic levels above the line, enterprise/site/area (default simline/demo/production); "
            "sparkplug: the group id (default simline)."
        ),
    ] = None,
    no_mqtt: Annotated[bool, typer.Option("--no-mqtt", help="Do not publish over MQTT.")] = False,
    dashboard_host: Annotated[
        str, typer.Option(help="Address of the dashboard; 0.0.0.0 lets visitors' phones reach the kiosk.")
    ] = "127.0.0.1",
    dashboard_port: Annotated[int, typer.Option(min=0, max=65535, help="Port of the dashboard.")] = 8050,
    no_dashboard: Annotated[bool, typer.Option("--no-dashboard", help="Do not serve the dashboard.")] = False,
    kiosk_url: Annotated[
        str | None,
        typer.Option(
            help="Address of the kiosk as visitors' phones reach it (in the QR code); default: derived from "
            "--dashboard-host (this machine's network address when it is 0.0.0.0)."
        ),
    ] = None,
    trainer_key: Annotated[
        str | None,
        typer.Option(
            help="Key the trainer controls (pause, speed, faults) need; default: none on 127.0.0.1, a random one "
            "(printed in the dashboard's address) when the dashboard is reachable from the network."
        ),
    ] = None,
    twin: Annotated[
        str | None,
        typer.Option(
            metavar="INVESTMENT",
            help="Also run the line with this investment (a name from the scenario, or a+b) side by side, with the "
            "same random numbers; the dashboard shows both and the money the investment makes so far.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print no status lines.")] = False,
) -> None:
    """Run the line live, paced to the wall clock: a dashboard with a visitors' kiosk, OPC UA and MQTT, until
    Ctrl-C."""
    import asyncio

    from simline.business import running_difference
    from simline.kpis import compute_kpis
    from simline.live.app import LiveApp, LiveOptions
    from simline.mqtt.config import MqttConfigError, parse_bind, parse_broker_url
    from simline.mqtt.topics import check_level, check_root

    if security not in ("open", "default", "secure"):
        raise typer.BadParameter("must be open, default or secure", param_hint="--security")
    if nodesets is not None and not nodesets.is_dir():
        raise typer.BadParameter(f"no such folder: {nodesets}", param_hint="--nodesets")
    if users is not None and not users.is_file():
        raise typer.BadParameter(f"no such file: {users}", param_hint="--users")
    if mqtt_profile not in ("uns", "sparkplug"):
        raise typer.BadParameter("must be uns or sparkplug", param_hint="--mqtt-profile")
    for hint, check in (
        ("--mqtt", lambda: mqtt is None or parse_broker_url(mqtt)),
        ("--mqtt-port", lambda: parse_bind(mqtt_port)),
        ("--mqtt-root", lambda: mqtt_root is None or (check_root if mqtt_profile == "uns" else check_level)(mqtt_root)),
    ):
        try:
            check()
        except MqttConfigError as exc:
            raise typer.BadParameter(str(exc), param_hint=hint) from None
    mqtt_bind, mqtt_port_number = parse_bind(mqtt_port)
    scenario = _load(file)
    options = LiveOptions(
        speed=speed,
        duration_seconds=duration,
        seed=seed,
        opcua=not no_opcua,
        opcua_endpoint=opcua_endpoint,
        security=security,
        state_dir=state_dir,
        users_file=users,
        nodesets=nodesets,
        mqtt=not no_mqtt,
        mqtt_url=mqtt,
        mqtt_bind=mqtt_bind,
        mqtt_port=mqtt_port_number,
        mqtt_profile=mqtt_profile,
        mqtt_root=mqtt_root,
        dashboard=not no_dashboard,
        dashboard_host=dashboard_host,
        dashboard_port=dashboard_port,
        kiosk_url=kiosk_url,
        trainer_key=trainer_key,
        twin=twin,
    )
    try:
        live_app = LiveApp(scenario, options)
    except SimlineError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None

    def status(a: LiveApp) -> None:
        if quiet:
            return
        now = a.line.env.now
        day, minute = divmod(int(now), 1440)
        twin = ""
        if a.alternative is not None:
            diff = running_difference(
                compute_kpis(a.driver.lines[0]),
                compute_kpis(a.driver.lines[1]),
                a.alternative,
                scenario.economics,
                scenario.funding,
            )
            twin = f"  {a.alternative.label}: {diff.net:+,.0f} EUR ({diff.net_funded:+,.0f} with co-funding)"
        out.print(
            f"[dim]sim day {day + 1} {minute // 60:02d}:{minute % 60:02d}[/dim]  "
            f"orders open {len(a.line.orders)}, done {a.line.stats.orders_completed}  "
            f"WIP {a.line.wip}  lag {a.driver.lag.current:.2f} s (p99 {a.driver.lag.quantile(0.99):.2f} s){twin}",
            highlight=False,
        )

    async def main() -> None:
        await live_app.start_adapters_then_print(lambda urls: _print_urls(scenario, options, urls, quiet))
        await live_app.run(status=status)

    try:
        asyncio.run(main())
    except OSError as exc:
        err.print(f"error: cannot start the live line: {exc}", markup=False)
        raise typer.Exit(1) from None
    except SimlineError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    if not quiet:
        out.print("Stopped cleanly.")


def _print_urls(scenario: Scenario, options: Any, urls: dict[str, str], quiet: bool) -> None:
    if quiet:
        return
    out.print(f"[bold]simline live[/bold] — {scenario.name} at speed {options.speed:g} (Ctrl-C to stop)")
    for name, url in urls.items():
        out.print(f"  {name:<10} {url}", highlight=False)
    if options.opcua and options.security == "open":
        out.print("  [yellow]warning:[/yellow] OPC UA profile 'open': no encryption, anyone may write and call")
