"""HTTP throughput of this checkout against an earlier revision of the service, side by side.

    python -m bench.revision_bench [--revision REV] [--seconds 10] [--rounds 3]

Four servers, 2 workers each on 127.0.0.1, take turns under the same load (wrk, 32 connections,
a new id per request, every prediction stored in SQLite): the service at REV (a git worktree,
run with this interpreter), the service now, the service now on uvicorn's own httptools
protocol instead of adapters/http/protocol.py, and a bare uvicorn app that answers 200 bytes
(what uvicorn itself can do). Medians over the rounds, and the ratios of the same run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.http_bench import medians, wrk
from bench.servers import ROOT, free_port, running, uvicorn_command

BARE = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--workers", "2", "--http", "httptools",
        "--no-access-log", "--log-level", "warning"]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--revision", default="32acca1")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (make bench installs it with apt-get)")
    work = Path(tempfile.mkdtemp(prefix="revision-bench-"))
    before = work / "before"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.revision],
                   check=True, capture_output=True)
    ports = {name: free_port() for name in ("before", "now", "public", "bare")}
    servers = {
        f"service at {args.revision}": (uvicorn_command(ports["before"]), ports["before"], before, "before"),
        "service now": (uvicorn_command(ports["now"]), ports["now"], ROOT, "now"),
        "service now, uvicorn's own httptools protocol": (
            [*uvicorn_command(ports["public"]), "--http", "httptools"], ports["public"], ROOT, "public"),
        "bare uvicorn app (200 bytes)": ([*BARE, "--port", str(ports["bare"])], ports["bare"], ROOT, "bare"),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    try:
        with (
            running(*servers[f"service at {args.revision}"][:2], {"STORE_URL": f"sqlite:///{work / 'before.db'}"},
                    cwd=before),
            running(*servers["service now"][:2], {"STORE_URL": f"sqlite:///{work / 'now.db'}"}),
            running(*servers["service now, uvicorn's own httptools protocol"][:2],
                    {"STORE_URL": f"sqlite:///{work / 'public.db'}"}),
            running(*servers["bare uvicorn app (200 bytes)"][:2]),
        ):
            for _, port, _, tag in servers.values():
                wrk(port, 2, f"warmup-{tag}")
            for r in range(args.rounds):
                for name, (_, port, _, tag) in servers.items():
                    results[name].append(wrk(port, args.seconds, f"{tag}{r}"))
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"# Revision benchmark: wrk, 32 connections, {args.rounds} rounds of {args.seconds} s, taking turns")
    print("| server | median req/s | median p50 | median p99 | errors + non-2xx |")
    print("| --- | ---: | ---: | ---: | ---: |")
    rps = {}
    for name, runs in results.items():
        rps[name], p50, p99, bad = medians(runs)
        print(f"| {name} | {rps[name]:.0f} | {p50:.2f} ms | {p99:.2f} ms | {bad} |")
    now, then = rps["service now"], rps[f"service at {args.revision}"]
    print(f"\nnow / {args.revision}: {now / then:.3f}")
    public = rps["service now, uvicorn's own httptools protocol"]
    print(f"our protocol / uvicorn's httptools: {now / public:.3f}")
    print(f"bare uvicorn / service now: {rps['bare uvicorn app (200 bytes)'] / now:.1f}x")


if __name__ == "__main__":
    main()
