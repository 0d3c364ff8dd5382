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


# The live command lives in its own module (it wires the adapters); registered here so `simline --help` lists it.
from simline.cli_live import live  # noqa: E402

app.command()(live)
