"""HTTP throughput with every prediction stored in SQLite: this service against Flask + gunicorn.

    python -m bench.http_bench [--seconds 10] [--rounds 3]

Both servers run 2 workers on 127.0.0.1 and take turns under the same load generator (wrk,
32 connections, a new id per request, bench/predict.lua); medians over the rounds. Afterwards
the stored rows are counted: every 200 must be a stored prediction.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.servers import ROOT, free_port, gunicorn_command, running, uvicorn_command

CONNECTIONS = 32


def wrk(port: int, seconds: int, tag: str) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "predict.lua"),
            f"http://127.0.0.1:{port}/predict",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"RUN_TAG": tag},
        timeout=seconds + 60,
    ).stdout
    found = re.search(r"RESULT (.*)", out)
    if not found:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    fields = {k: float(v) for k, v in (pair.split("=") for pair in found.group(1).split())}
    fields["rps"] = fields["requests"] / (fields["duration_us"] / 1e6)
    return fields


def wrk_arguments(doc: str | None) -> argparse.Namespace:
    """--seconds and --rounds of an HTTP benchmark, once wrk is known to be installed."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (make bench installs it with apt-get)")
    return args


def medians(runs: list[dict[str, float]]) -> tuple[float, float, float, int]:
    """Median req/s, median p50 and p99 in ms, and the errors + non-2xx answers of all runs."""
    return (
        statistics.median(x["rps"] for x in runs),
        statistics.median(x["p50_us"] for x in runs) / 1000,
        statistics.median(x["p99_us"] for x in runs) / 1000,
        int(sum(x["errors"] + x["non2xx"] for x in runs)),
    )


def count_rows(db: Path, table: str = "predictions") -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def main() -> None:
    args = wrk_arguments(__doc__)
    work = Path(tempfile.mkdtemp(prefix="http-bench-"))
    ours_db, baseline_db = work / "ours.db", work / "baseline.db"
    ours_port, baseline_port = free_port(), free_port()
    results: dict[str, list[dict[str, float]]] = {
        "this service (uvicorn, 2 workers)": [],
        "Flask + gunicorn (2 workers)": [],
    }
    with (
        running(uvicorn_command(ours_port), ours_port, {"STORE_URL": f"sqlite:///{ours_db}"}),
        running(gunicorn_command(baseline_port), baseline_port, {"BASELINE_DB": str(baseline_db)}),
    ):
        warmup = wrk(ours_port, 2, "warmup-ours")
        wrk(baseline_port, 2, "warmup-base")
        for r in range(args.rounds):
            results["this service (uvicorn, 2 workers)"].append(wrk(ours_port, args.seconds, f"ours{r}"))
            results["Flask + gunicorn (2 workers)"].append(wrk(baseline_port, args.seconds, f"base{r}"))
    stored = count_rows(ours_db)
    answered = sum(int(x["requests"] - x["non2xx"]) for x in [warmup, *results["this service (uvicorn, 2 workers)"]])
    print(
        f"# HTTP benchmark: wrk, {CONNECTIONS} connections, {args.rounds} rounds of {args.seconds} s each, "
        "every prediction stored in SQLite"
    )
    print("| server | median req/s | median p50 | median p99 | errors + non-2xx |")
    print("| --- | ---: | ---: | ---: | ---: |")
    throughput = {}
    for name, runs in results.items():
        rps, p50, p99, bad = medians(runs)
        throughput[name] = rps
        print(f"| {name} | {rps:.0f} | {p50:.2f} ms | {p99:.2f} ms | {bad} |")
    ours, base = throughput.values()
    print(f"\nthroughput ratio: {ours / base:.1f}× (target ≥ 20×)")
    runs = 1 + args.rounds
    # wrk stops with up to one request per connection in flight: those are stored but not counted.
    print(
        f"stored rows: {stored} for {answered} counted 2xx answers (warm-up included); "
        f"every answer stored: {answered <= stored <= answered + CONNECTIONS * runs}"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
