"""Offline scoring of a 1,000,000-row CSV: `python -m core.score` against scikit-learn's own
batched `predict_proba` over the same file read with pandas, side by side.

    python -m bench.score_bench [--rows 1000000] [--runs 3]

The file is made here from the shipped model's schema (values drawn in each feature's training
range or categories, some missing), so no data set is needed. Each run is a fresh process, timed
from start to exit with its peak resident memory (`wait4`); the two take turns, run by run, and
the medians are reported. Both write what they scored: ours a CSV of the input columns plus
proba, predicted_class and error; scikit-learn's the frame with a proba column (`to_csv`).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.model import DEFAULT_MODEL_DIR, load_model

ROOT = Path(__file__).resolve().parents[1]
SKLEARN_BATCH = """
import sys, joblib, pandas as pd
from core.model import DEFAULT_MODEL_DIR, MODEL_FILE, load_model
names = load_model(DEFAULT_MODEL_DIR).schema.names
pipeline = joblib.load(DEFAULT_MODEL_DIR / MODEL_FILE)
frame = pd.read_csv(sys.argv[1])
frame["proba"] = pipeline.predict_proba(frame[names])[:, 1]
frame.to_csv(sys.argv[2], index=False)
"""


def make_file(path: Path, rows: int, seed: int = 0) -> None:
    schema = load_model(DEFAULT_MODEL_DIR).schema
    rng = random.Random(seed)

    def value(feature: object) -> str:
        if getattr(feature, "nullable", False) and rng.random() < 0.1:
            return ""
        kind = feature.kind  # type: ignore[attr-defined]
        if kind == "category":
            return rng.choice(feature.categories)  # type: ignore[attr-defined]
        low, high = feature.seen_min, feature.seen_max  # type: ignore[attr-defined]
        return str(rng.randint(int(low), int(high))) if kind == "integer" else f"{rng.uniform(low, high):.2f}"

    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(schema.names)
        for _ in range(rows):
            writer.writerow([value(f) for f in schema.features])


def timed(command: list[str]) -> tuple[float, float]:
    """(seconds, peak resident MiB) of `command`, run to its end."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):
        raise RuntimeError(f"{command} exited with {process.returncode}")
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="score-bench-") as tmp:
        data = Path(tmp) / "observations.csv"
        make_file(data, args.rows)
        commands = {
            "core.score": [sys.executable, "-m", "core.score", "--model", str(DEFAULT_MODEL_DIR), "--data", str(data),
                           "--out", str(Path(tmp) / "ours.csv")],
            "pandas + predict_proba": [sys.executable, "-c", SKLEARN_BATCH, str(data), str(Path(tmp) / "theirs.csv")],
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                results[name].append(timed(command))
        size = data.stat().st_size / 2**20
    print(f"{args.rows:,} rows ({size:.0f} MiB CSV), {args.runs} runs each, taking turns; "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print("| command | median time | rows/s | peak memory |")
    print("| --- | --- | --- | --- |")
    medians = {}
    for name, runs in results.items():
        seconds = statistics.median(s for s, _ in runs)
        memory = statistics.median(m for _, m in runs)
        medians[name] = (seconds, memory)
        print(f"| {name} | {seconds:.1f} s | {args.rows / seconds:,.0f} | {memory:,.0f} MiB |")
    (ours_s, ours_m), (theirs_s, theirs_m) = medians["core.score"], medians["pandas + predict_proba"]
    print(f"time ratio core.score / sklearn: {ours_s / theirs_s:.2f}; memory ratio: {ours_m / theirs_m:.2f}")


if __name__ == "__main__":
    main()
