"""HTTP throughput with every prediction stored: PostgreSQL beside SQLite, in the same run.

    python -m bench.postgres_bench [--seconds 10] [--rounds 3]

The service runs twice on 127.0.0.1 (2 uvicorn workers each, the Procfile's setup), once on a
SQLite file and once on a PostgreSQL database of a server this benchmark starts (initdb into a
temporary directory, fsync on, as tests/postgres_server.py does); the two take turns under the
same load (wrk, 32 connections, a new id per request, bench/predict.lua), medians over the rounds.
Afterwards the stored rows are counted: every 200 must be a stored prediction.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg

from bench.http_bench import CONNECTIONS, count_rows, medians, wrk, wrk_arguments
from bench.servers import free_port, running, uvicorn_command
from tests.postgres_server import SKIP_REASON, PostgresServer, server_binaries


def main() -> None:
    args = wrk_arguments(__doc__)
    if server_binaries() is None:
        raise SystemExit(SKIP_REASON)
    work = Path(tempfile.mkdtemp(prefix="postgres-bench-"))
    sqlite_db = work / "predictions.db"
    sqlite_port, postgres_port = free_port(), free_port()
    names = {"sqlite": "SQLite file", "postgres": "PostgreSQL 127.0.0.1"}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with PostgresServer(work) as server:
        url = server.create_database("bench")
        with (
            running(uvicorn_command(sqlite_port), sqlite_port, {"STORE_URL": f"sqlite:///{sqlite_db}"}),
            running(uvicorn_command(postgres_port), postgres_port, {"STORE_URL": url}),
        ):
            warmups = {"sqlite": wrk(sqlite_port, 2, "warmup-sqlite"), "postgres": wrk(postgres_port, 2, "warmup-pg")}
            for r in range(args.rounds):
                results["sqlite"].append(wrk(sqlite_port, args.seconds, f"sqlite{r}"))
                results["postgres"].append(wrk(postgres_port, args.seconds, f"postgres{r}"))
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM predictions").fetchone()
            stored = {"sqlite": count_rows(sqlite_db), "postgres": int(row[0]) if row else 0}
    print(f"# PostgreSQL beside SQLite: wrk, {CONNECTIONS} connections, 2 workers, {args.rounds} rounds of "
          f"{args.seconds} s each, taking turns, every prediction stored")
    print("| store | median req/s | median p50 | median p99 | errors + non-2xx | stored rows for 2xx |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    throughput = {}
    for key, runs in results.items():
        rps, p50, p99, bad = medians(runs)
        throughput[key] = rps
        answered = sum(int(x["requests"] - x["non2xx"]) for x in [warmups[key], *runs])
        # wrk stops with up to one request per connection in flight: stored, but not counted.
        every = answered <= stored[key] <= answered + CONNECTIONS * (1 + args.rounds)
        print(f"| {names[key]} | {rps:.0f} | {p50:.2f} ms | {p99:.2f} ms | {bad} | "
              f"{stored[key]} for {answered} ({'all stored' if every else 'MISMATCH'}) |")
    print(f"\nPostgreSQL / SQLite throughput: {throughput['postgres'] / throughput['sqlite']:.2f} (target >= 0.5)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
