"""Profile simline on the tandem line of bench_tandem.py (20 stations by default) to find its hot spots.

cProfile (the default) counts every call, so it inflates small functions; ``--pyinstrument`` samples instead
(``pip install pyinstrument``). Run ``python benchmarks/profile_tandem.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tandem import ARRIVALS_PER_HOUR, tandem_yaml

from simline.scenario import parse_scenario
from simline.sim import Line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Profile simline's run loop on a tandem line (build excluded).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--stations", type=int, default=20)
    parser.add_argument("--horizon-hours", type=float, default=200.0)
    parser.add_argument("--buffer", type=int, default=None, help="finite buffers (all but the first station)")
    parser.add_argument("--top", type=int, default=20, help="rows of each table")
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative", "ncalls"))
    parser.add_argument("--pyinstrument", action="store_true", help="sample with pyinstrument instead")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the top rows to this JSON file")
    args = parser.parse_args(argv)

    scenario = parse_scenario(tandem_yaml(args.stations, args.horizon_hours, ARRIVALS_PER_HOUR, args.buffer, 1))
    line = Line(scenario)
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        line.run()
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
        return 0

    prof = cProfile.Profile()
    prof.enable()
    line.run()
    prof.disable()
    ops = line.finished_total * args.stations
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    print(f"simline, {args.stations}-station tandem line, {args.horizon_hours:g} h: {line.finished_total} parts")
    print(f"total under cProfile: {stats.total_tt:.3f} s ({ops} station operations)")  # type: ignore[attr-defined]
    stats.sort_stats(args.sort).print_stats(args.top)
    print(out.getvalue())
    if args.json is not None:
        rows = []
        for (file, lineno, func), (_cc, nc, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
            rows.append({"function": f"{Path(file).name}:{lineno}({func})", "ncalls": nc, "tottime": tt, "cumtime": ct})
        rows.sort(key=lambda r: r["tottime"], reverse=True)
        args.json.write_text(json.dumps({"ops": ops, "top": rows[: args.top]}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
