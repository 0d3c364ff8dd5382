"""The `simline` console command, run for real in a subprocess: help, version, validate and run."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simline.eventlog import COLUMNS

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
STATIONS = ("cut", "engrave", "pack")


def _command() -> list[str]:
    exe = shutil.which("simline")
    if exe is not None:
        return [exe]
    return [sys.executable, "-c", "from simline.cli import main; main()"]


def simline(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the console command; wide columns so that rich does not wrap the messages we look for."""
    env = os.environ | {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [*_command(), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=300,
        check=False,
    )


def test_help_lists_the_commands() -> None:
    res = simline("--help")
    assert res.returncode == 0, res.stderr
    for word in ("validate", "run", "--version", "--help"):
        assert word in res.stdout


def test_run_help_lists_the_options() -> None:
    res = simline("run", "--help")
    assert res.returncode == 0, res.stderr
    for option in (
        "--replications",
        "-r",
        "--seed",
        "--horizon-hours",
        "--warmup-hours",
        "--jobs",
        "--json",
        "--events",
        "--quiet",
    ):
        assert option in res.stdout, option


def test_version() -> None:
    from simline import __version__

    res = simline("--version")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"simline {__version__}"


def test_no_arguments_shows_help() -> None:
    res = simline()
    assert res.returncode in (0, 2)
    assert "Usage" in res.stdout + res.stderr


def test_validate_quickstart() -> None:
    res = simline("validate", QUICKSTART)
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout
    assert "Quickstart line" in res.stdout


def test_validate_broken_file_points_at_the_line(tmp_path: Path) -> None:
    text = QUICKSTART.read_text(encoding="utf-8").replace("buffer: 20", "buffer: -3")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text, encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "buffer: -3" in row)
    res = simline("validate", broken)
    assert res.returncode == 2
    output = res.stdout + res.stderr
    assert f"{broken}:{line}:" in output
    assert "stations[0].buffer" in output
    assert "Traceback" not in output


def test_validate_several_files_fails_if_one_is_broken(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nproducts: 3\n", encoding="utf-8")
    res = simline("validate", QUICKSTART, broken)
    assert res.returncode == 2
    assert "ok" in res.stdout
    assert f"{broken}:2:" in res.stderr
    assert "Traceback" not in res.stdout + res.stderr


@pytest.mark.parametrize("command", ["validate", "run"])
def test_nonexistent_file(tmp_path: Path, command: str) -> None:
    res = simline(command, tmp_path / "missing.yaml")
    assert res.returncode == 2
    assert "no such file" in res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr


def test_run_writes_the_documented_json(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    res = simline("run", QUICKSTART, "-r", "2", "--horizon-hours", "48", "--json", out, "-q")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""  # quiet: no tables
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["format"] == "simline.run/1"
    assert doc["scenario"] == "Quickstart line"
    assert doc["replications"] == 2
    assert doc["horizon_hours"] == 48
    assert doc["seed"] == 42
    assert doc["bottleneck"] in STATIONS
    oee = doc["line"]["oee"]
    assert set(oee) >= {"mean", "ci95", "half_width"}
    assert 0 < oee["mean"] <= 1
    low, high = oee["ci95"]
    assert low <= oee["mean"] <= high
    assert oee["half_width"] == pytest.approx((high - low) / 2)
    assert oee["n"] == 2
    assert set(doc["stations"]) == set(STATIONS)
    for sid in STATIONS:
        assert 0 <= doc["stations"][sid]["oee"]["mean"] <= 1
    assert doc["line"]["throughput_per_hour"]["mean"] > 0


def test_run_prints_the_kpi_tables() -> None:
    res = simline("run", QUICKSTART, "-r", "2", "--horizon-hours", "48", "-j", "1")
    assert res.returncode == 0, res.stderr
    assert "Throughput" in res.stdout
    for sid in STATIONS:
        assert sid in res.stdout
    assert "bottleneck" in res.stdout
    assert "Traceback" not in res.stderr


def test_run_writes_the_event_log(tmp_path: Path) -> None:
    events = tmp_path / "x.csv"
    res = simline("run", QUICKSTART, "-r", "2", "--horizon-hours", "24", "--events", events, "-q", "-j", "1")
    assert res.returncode == 0, res.stderr
    with events.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == COLUMNS
        rows = list(reader)
    assert rows
    assert {r["replication"] for r in rows} == {"0", "1"}
    assert {"order_created", "operation_started", "unit_finished"} <= {r["event"] for r in rows}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_warmup_not_below_horizon_is_a_usage_error() -> None:
    res = simline("run", QUICKSTART, "--horizon-hours", "48", "--warmup-hours", "48", "-q")
    assert res.returncode == 2
    err = res.stderr
    assert "Usage" in err
    assert "warmup_hours (48) must be less than horizon_hours (48)" in err
    assert "Traceback" not in err + res.stdout


def test_negative_horizon_is_a_usage_error() -> None:
    res = simline("run", QUICKSTART, "--horizon-hours", "-5", "-q")
    assert res.returncode == 2
    assert "greater than 0" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_negative_horizon_message_names_the_option() -> None:
    res = simline("run", QUICKSTART, "--horizon-hours", "-5", "-q")
    assert "horizon" in res.stderr.lower()


def test_bad_event_log_suffix_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    res = simline("run", QUICKSTART, "--horizon-hours", "24", "--events", target, "-q")
    assert res.returncode == 2
    assert "--events" in res.stderr
    assert ".csv or .parquet" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert not target.exists()


def test_zero_replications_is_a_usage_error() -> None:
    res = simline("run", QUICKSTART, "-r", "0", "-q")
    assert res.returncode == 2
    assert "--replications" in res.stderr or "-r" in res.stderr
