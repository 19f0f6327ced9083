"""What a fast-form challenger (SHADOW_MODEL_DIRS) adds to a request, in the core and over HTTP.

    python -m bench.challenger_bench [--seconds 10] [--rounds 3]

The champion is the shipped model; the challenger another linear pipeline (core.build.train's, with
a fast form) fitted on made Titanic-like rows, so it scores the same observations.
- core: PredictionService.predict into a MemoryStore (validation, scoring, counters, the write),
  with and without the challenger, interleaved (medians of per-call times, 15 rounds);
- HTTP: the service twice (2 uvicorn workers each, SQLite), with and without the challenger,
  taking turns under wrk (32 connections, a new id per request), medians over the rounds.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

from bench.core_bench import OBSERVATION
from bench.http_bench import medians, wrk, wrk_arguments
from bench.servers import free_port, running, uvicorn_command
from bench.stats import interleaved_medians


def challenger_artifact(out: Path) -> Path:
    """A second fast-form model for the shipped model's features, fitted on made rows."""
    import numpy as np
    import pandas as pd

    from core.build.artifact import write_artifact
    from core.build.train import build_pipeline

    rng = np.random.default_rng(0)
    n = 600
    table = pd.DataFrame({
        "Age": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(1, 70, n).round(1)),
        "Cabin": np.where(rng.random(n) < 0.75, None, rng.choice(["B5", "C22", "E10"], n)).astype(object),
        "Embarked": rng.choice(["C", "Q", "S"], n, p=[0.2, 0.1, 0.7]).astype(object),
        "Fare": rng.gamma(2.0, 15.0, n).round(2),
        "Parch": rng.integers(0, 3, n),
        "Pclass": rng.integers(1, 4, n),
        "Sex": rng.choice(["female", "male"], n).astype(object),
        "SibSp": rng.integers(0, 3, n),
    })
    logit = 1.5 * (table["Sex"] == "female") - 0.6 * (table["Pclass"] - 2)
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int))
    pipeline = build_pipeline(table).fit(table, y)
    write_artifact(out, pipeline, table, y, target="Survived", positive_class=1, threshold=0.5,
                   metrics={"n": n}, training={"command": "bench.challenger_bench"})
    return out


def core_times(challenger_dir: Path) -> dict[str, float]:
    from adapters.storage import MemoryStore
    from core.model import DEFAULT_MODEL_DIR, load_model
    from core.service import PredictionService

    champion, challenger = load_model(DEFAULT_MODEL_DIR), load_model(challenger_dir)
    ids = count()

    def clock() -> datetime:
        return datetime.now(UTC)

    alone = PredictionService(champion, MemoryStore(), clock)
    paired = PredictionService(champion, MemoryStore(), clock, challengers=[challenger])
    assert paired.predict("check", OBSERVATION)[0].shadows[0].proba is not None
    cases = {
        "champion alone": (lambda: alone.predict(next(ids), OBSERVATION), 5000),
        "champion + 1 fast challenger": (lambda: paired.predict(next(ids), OBSERVATION), 5000),
    }
    return interleaved_medians(cases, rounds=15)


def main() -> None:
    args = wrk_arguments(__doc__)
    work = Path(tempfile.mkdtemp(prefix="challenger-bench-"))
    challenger_dir = challenger_artifact(work / "challenger")

    core = core_times(challenger_dir)
    print("# A fast-form challenger's cost: PredictionService.predict into a MemoryStore, 15 interleaved rounds")
    print("| case | median per request | vs alone |")
    print("| --- | ---: | ---: |")
    base = core["champion alone"]
    for name, seconds in core.items():
        print(f"| {name} | {seconds * 1e6:.1f} µs | {seconds / base:.2f}× |")

    ports = {"alone": free_port(), "paired": free_port()}
    envs = {"alone": {"STORE_URL": f"sqlite:///{work / 'alone.db'}"},
            "paired": {"STORE_URL": f"sqlite:///{work / 'paired.db'}", "SHADOW_MODEL_DIRS": str(challenger_dir)}}
    runs: dict[str, list[dict[str, float]]] = {"alone": [], "paired": []}
    with running(uvicorn_command(ports["alone"]), ports["alone"], envs["alone"]), \
            running(uvicorn_command(ports["paired"]), ports["paired"], envs["paired"]):
        for name, port in ports.items():
            wrk(port, 2, f"warmup-{name}")
        for r in range(args.rounds):
            for name, port in ports.items():
                runs[name].append(wrk(port, args.seconds, f"{name}{r}"))
    print(f"\n# HTTP: wrk, 32 connections, 2 workers, SQLite, {args.rounds} rounds of {args.seconds} s, taking turns")
    print("| server | median req/s | median p50 | median p99 | errors + non-2xx |")
    print("| --- | ---: | ---: | ---: | ---: |")
    throughput = {}
    for name, label in (("alone", "champion alone"), ("paired", "champion + 1 fast challenger")):
        rps, p50, p99, bad = medians(runs[name])
        throughput[name] = rps
        print(f"| {label} | {rps:.0f} | {p50:.2f} ms | {p99:.2f} ms | {bad} |")
    added_core = core["champion + 1 fast challenger"] / base - 1
    added_http = throughput["alone"] / throughput["paired"] - 1
    print(f"\nserver time added by the challenger: core {added_core:+.0%}, HTTP {added_http:+.0%} (target <= +20%)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
