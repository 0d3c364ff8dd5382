"""The `simline` command: the one composition root that wires scenarios, the model and its outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from simline import __version__
from simline.errors import ScenarioError, SimlineError
from simline.experiment import run_experiment
from simline.report_text import print_result
from simline.scenario import Scenario, load_scenario
from simline.scenario.line import Experiment

__all__ = ["app", "main"]

app = typer.Typer(
    name="simline",
    help="Smart-factory demonstrator: simulate a mass-customisation line, its KPIs and its investments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(width=None if Console().is_terminal else 120)
err = Console(stderr=True, soft_wrap=True)

EXIT_SCENARIO = 2

# options shared by the commands that run experiments
SeedOption = Annotated[int | None, typer.Option(min=0, help="Seed (default: the scenario's).")]
HorizonOption = Annotated[float | None, typer.Option(help="Simulated hours per replication.")]
WarmupOption = Annotated[float | None, typer.Option(help="Hours discarded at the start of each replication.")]
JobsOption = Annotated[
    int | None, typer.Option("--jobs", "-j", min=1, help="Parallel processes (default: one per core).")
]


def _version(value: bool) -> None:
    if value:
        out.print(f"simline {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Smart-factory demonstrator: simulate a mass-customisation line, its KPIs and its investments."""


def _load(path: Path) -> Scenario:
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(EXIT_SCENARIO) from None


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Scenario files (YAML) to check.", show_default=False)],
) -> None:
    """Check scenario files; print every problem with its line, exit 2 if any file is invalid."""
    failed = False
    for file in files:
        try:
            s = load_scenario(file)
        except ScenarioError as exc:
            err.print(str(exc), markup=False, highlight=False)
            failed = True
            continue
        machines = sum(st.machines for st in s.stations)
        out.print(
            f"[green]ok[/green] {file}: {s.name!r} — {len(s.products)} product families, "
            f"{len(s.stations)} stations ({machines} machines), {s.experiment.horizon_hours:g} h horizon",
            highlight=False,
        )
    if failed:
        raise typer.Exit(EXIT_SCENARIO)


def _with_experiment(scenario: Scenario, **changes: Any) -> Scenario:
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return scenario
    data = scenario.experiment.model_dump() | changes
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            (f"--{str(e['loc'][0]).replace('_', '-')}: " if e["loc"] else "") + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise typer.BadParameter(problems) from None
    return scenario.model_copy(update={"experiment": experiment})


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Scenario file (YAML).", show_default=False)],
    replications: Annotated[
        int | None,
        typer.Option("--replications", "-r", min=1, max=10_000, help="Replications (default: the scenario's)."),
    ] = None,
    seed: SeedOption = None,
    horizon_hours: HorizonOption = None,
    warmup_hours: WarmupOption = None,
    jobs: JobsOption = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write all KPIs with confidence intervals as JSON.")
    ] = None,
    events: Annotated[
        Path | None, typer.Option(help="Write the full event log (.csv, or .parquet with pyarrow).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print no tables (use with --json).")] = False,
) -> None:
    """Run replications of a scenario and print its KPIs with 95 % confidence intervals."""
    scenario = _with_experiment(
        _load(file),
        horizon_hours=horizon_hours,
        warmup_hours=warmup_hours,
        replications=replications,
        seed=seed,
    )
    if events is not None and events.suffix.lower() not in (".csv", ".parquet"):
        raise typer.BadParameter("the event log file must end in .csv or .parquet", param_hint="--events")
    reps = scenario.experiment.replications
    try:
        with _progress(quiet) as progress:
            task = progress.add_task(f"{scenario.name} ({scenario.experiment.horizon_hours:g} h)", total=reps)
            result = run_experiment(
                scenario,
                jobs=jobs,
                events=events,
                progress=lambda done, _total: progress.update(task, completed=done),
            )
    except SimlineError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    if not quiet:
        print_result(result, out)
    if json_path is not None:
        json_path.write_text(json.dumps(_json_safe(result.to_json()), indent=2) + "\n", encoding="utf-8")
        if not quiet:
            out.print(f"KPIs written to {json_path}", highlight=False)
    if events is not None and not quiet:
        out.print(f"Event log written to {events}", highlight=False)


@app.command()
def compare(
    file: Annotated[Path, typer.Argument(help="Scenario file (YAML) with investments.", show_default=False)],
    investment: Annotated[
        list[str] | None,
        typer.Option(
            "--investment",
            "-i",
            help="An investment to compare, or a combination such as 'pdm+smed'; repeatable "
            "(default: each investment of the scenario on its own).",
        ),
    ] = None,
    replications: Annotated[
        int | None,
        typer.Option("--replications", "-r", min=2, max=10_000, help="Replications (default: the scenario's)."),
    ] = None,
    seed: SeedOption = None,
    horizon_hours: HorizonOption = None,
    warmup_hours: WarmupOption = None,
    jobs: JobsOption = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the comparison and business cases as JSON.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write a self-contained HTML report (plotly, works offline).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print no tables.")] = False,
) -> None:
    """Compare the baseline with investments: KPI changes with paired 95 % CIs and the business case."""
    from simline.compare import run_comparison
    from simline.report_text import print_comparison

    scenario = _with_experiment(
        _load(file), horizon_hours=horizon_hours, warmup_hours=warmup_hours, replications=replications, seed=seed
    )
    if not scenario.investments:
        err.print(f"{file}: the scenario has no investments to compare (add an 'investments:' list)")
        raise typer.Exit(EXIT_SCENARIO)
    if scenario.experiment.replications < 2 and replications is None:
        scenario = _with_experiment(scenario, replications=2)
    specs = investment or [inv.name for inv in scenario.investments]
    runs = scenario.experiment.replications * (1 + len(specs))
    try:
        with _progress(quiet) as progress:
            task = progress.add_task(f"{scenario.name}: baseline + {len(specs)} alternative(s)", total=runs)
            comparison = run_comparison(
                scenario, specs, jobs=jobs, progress=lambda done, _total: progress.update(task, completed=done)
            )
    except ScenarioError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(EXIT_SCENARIO) from None
    except SimlineError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    if not quiet:
        print_comparison(comparison, out)
    if json_path is not None:
        json_path.write_text(json.dumps(_json_safe(comparison.to_json()), indent=2) + "\n", encoding="utf-8")
        if not quiet:
            out.print(f"Comparison written to {json_path}", highlight=False)
    if report is not None:
        from dashboards.report import write_report

        write_report(comparison, report)
        if not quiet:
            out.print(f"Report written to {report}", highlight=False)


@app.command()
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


users_app = typer.Typer(help="Manage the users file of the OPC UA server (scrypt hashes, no plaintext).")
app.add_typer(users_app, name="users")


def _read_password(password_stdin: bool) -> str:
    import getpass
    import sys

    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password (at least 10 characters): ")
    if getpass.getpass("Repeat the password: ") != first:
        err.print("error: the passwords differ")
        raise typer.Exit(1)
    return first


@users_app.command("add")
def users_add(
    file: Annotated[Path, typer.Argument(help="Users file (JSON; created when missing).", show_default=False)],
    name: Annotated[str, typer.Argument(help="User name.", show_default=False)],
    role: Annotated[str, typer.Option(help="viewer (read only) or operator (also writes and calls methods).")] = (
        "operator"
    ),
    replace: Annotated[bool, typer.Option(help="Replace the user's password and role if the user exists.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (for scripts).")
    ] = False,
) -> None:
    """Add a user (the password is asked for, or read from standard input)."""
    from opcua_server.users import add_user

    try:
        add_user(file, name, _read_password(password_stdin), role, replace=replace)
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"user {name!r} ({role}) saved in {file}", highlight=False)


@users_app.command("remove")
def users_remove(
    file: Annotated[Path, typer.Argument(help="Users file.", show_default=False)],
    name: Annotated[str, typer.Argument(help="User name.", show_default=False)],
) -> None:
    """Remove a user."""
    from opcua_server.users import remove_user

    try:
        remove_user(file, name)
    except (ValueError, OSError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"user {name!r} removed from {file}", highlight=False)


@users_app.command("list")
def users_list(file: Annotated[Path, typer.Argument(help="Users file.", show_default=False)]) -> None:
    """List the users and their roles (never passwords)."""
    from opcua_server.users import load_users

    try:
        users = load_users(file)
    except (ValueError, OSError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    for record in users.values():
        out.print(f"{record.name}\t{record.role}", highlight=False)


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold]simulating[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    )


def main() -> None:
    """Entry point of the console script."""
    app()
