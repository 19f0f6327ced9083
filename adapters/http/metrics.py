"""Prometheus metrics that add up over every worker process of one server.

uvicorn's `--workers N` runs N processes and a scrape reaches one of them, so counts kept in one
process's memory would be a fraction of the truth. Instead every process appends its increments
to a file of its own in a directory that all workers of the server share, one JSON line per
event, and a scrape (answered by any worker) adds up every file in it. A process's file is
always the sum of its lines; every `COMPACT_EVERY` events the process rewrites it as one line of
its totals (written aside and renamed over, so a reader sees the old file or the new one, both
complete). A line is only counted once it ends with a newline, so a line being written while a
scrape reads is counted by the next scrape. Files of workers that exited stay, so counters never
go back when a worker is replaced.

One event costs one small `write` to a file only its process writes: no lock across processes.
When the directory cannot be used, counts are kept in this process only and a warning is logged:
the service must never fail because of its metrics.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import uuid
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from adapters.http.jsontext import json_bytes
from adapters.logs import JsonMessage

logger = logging.getLogger("sklearn_serve.http")

PREFIX = "sklearn_serve"
COMPACT_EVERY = 1000
# Prometheus' default buckets (seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# A client chooses the method it sends: any other is counted as OTHER, so labels stay few.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"
MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FILE_NAME = re.compile(r"[0-9]+-[0-9a-f]{12}\.jsonl")
_SERVER_DIR = re.compile(r"([0-9]+)-([0-9]+)-[0-9a-f]{12}")

Key = tuple[Any, ...]
Increment = tuple[Key, float]
# Where an endpoint leaves its request's other increments (in the ASGI scope's state) for the
# middleware to write with the request's own.
EVENTS = "metric_events"

# (name, type, help, label names); a key's first element names its family.
FAMILIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("http_requests_total", "counter", "HTTP requests answered, by route template, method and status.",
     ("route", "method", "status")),
    ("http_request_duration_seconds", "histogram",
     "Time from receiving a request to sending the end of its response, by route template and method.",
     ("route", "method")),
    ("predictions_total", "counter",
     "Predictions stored by this server (a retry that returns a stored prediction is not counted again).",
     ("model_version", "predicted_class")),
    ("outcomes_total", "counter",
     "True outcomes recorded with POST /update (setting one again counts again), with the class that "
     "had been predicted.", ("true_class", "predicted_class")),
)


class Metrics:
    """The counters of one app, in `directory` (shared by the server's workers) or, if None, in memory."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._totals: dict[Key, float] = {}
        self._pid = -1
        self._fd: int | None = None
        self._path: Path | None = None
        self._lines = 0

    def request(
        self, route: str | None, method: str, status: int, seconds: float, events: Iterable[Increment] = ()
    ) -> None:
        """One answered request (`route` is the matched route template, None when none matched),
        and what else it did (`prediction_events`, `outcome_events`): one write for all of it."""
        labels = (route or UNMATCHED_ROUTE, method if method in METHODS else "OTHER")
        bucket = bisect_left(LATENCY_BUCKETS, seconds)  # the first bucket whose bound is >= seconds
        self._add([
            (("http_requests_total", *labels, str(status)), 1),
            (("http_request_duration_seconds", *labels, "bucket", bucket), 1),
            (("http_request_duration_seconds", *labels, "sum"), seconds),
            *events,
        ])

    @staticmethod
    def prediction_events(stored: Iterable[tuple[str, bool]]) -> list[Increment]:
        """Newly stored predictions, as (model version, predicted class)."""
        counts: dict[Key, float] = {}
        for version, predicted in stored:
            key = ("predictions_total", version, str(int(predicted)))
            counts[key] = counts.get(key, 0) + 1
        return list(counts.items())

    @staticmethod
    def outcome_events(true_class: int, predicted_class: bool) -> list[Increment]:
        return [(("outcomes_total", str(true_class), str(int(predicted_class))), 1)]

    def _add(self, increments: list[Increment]) -> None:
        line = json_bytes(increments) + b"\n"
        with self._lock:
            for key, amount in increments:
                self._totals[key] = self._totals.get(key, 0) + amount
            if self.directory is None:
                return
            try:
                if os.getpid() != self._pid:
                    self._start_file(increments)
                if self._lines >= COMPACT_EVERY:
                    self._compact()  # the totals written include this event's increments
                else:
                    assert self._fd is not None
                    os.write(self._fd, line)
                    self._lines += 1
            except OSError as e:
                self._give_up(e)

    def _start_file(self, increments: list[tuple[Key, float]]) -> None:
        # A new process (or a fork of one that had a file) starts from zero in a file of its own;
        # the random part keeps a reused pid from appending to a dead worker's totals.
        if self._pid != -1:
            # The parent's file and counts are the parent's: the child's event is its first.
            self._fd = None
            self._totals = {key: amount for key, amount in increments}
        self._pid = os.getpid()
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        self._path = self.directory / f"{self._pid}-{uuid.uuid4().hex[:12]}.jsonl"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lines = 0

    def _compact(self) -> None:
        assert self.directory is not None and self._path is not None and self._fd is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        aside = self.directory / f".{self._path.name}.{uuid.uuid4().hex[:8]}"
        aside.write_bytes((json.dumps(list(self._totals.items()), separators=(",", ":")) + "\n").encode("utf-8"))
        os.replace(aside, self._path)
        os.close(self._fd)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND, 0o600)
        self._lines = 1

    def _give_up(self, error: OSError) -> None:
        logger.warning(JsonMessage({"event": "metrics_unshared", "directory": str(self.directory),
                                   "error": str(error)}))
        self.directory = None
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def totals(self) -> dict[Key, float]:
        """Every process's counts added up (this process's only, when there is no directory)."""
        with self._lock:
            directory = self.directory
            if directory is None:
                return dict(self._totals)
        totals: dict[Key, float] = {}
        try:
            names = [n for n in os.listdir(directory) if _FILE_NAME.fullmatch(n)]
        except FileNotFoundError:
            names = []
        for name in names:
            try:
                data = (directory / name).read_bytes()
            except FileNotFoundError:  # removed since the listing (by a tmp cleaner): nothing to add
                continue
            for line in data.split(b"\n")[:-1]:
                _add_line(totals, line)
        return totals

    def exposition(self) -> str:
        """The Prometheus text format (version 0.0.4) of `totals()`."""
        return render(self.totals())


def _add_line(totals: dict[Key, float], line: bytes) -> None:
    try:
        increments = json.loads(line)
        parsed = [(tuple(key), float(amount)) for key, amount in increments]
    except (ValueError, TypeError):
        return  # torn by a crash mid-write: the line never counted
    for key, amount in parsed:
        totals[key] = totals.get(key, 0) + amount


def render(totals: Mapping[Key, float]) -> str:
    lines: list[str] = []
    for family, kind, help_text, label_names in FAMILIES:
        name = f"{PREFIX}_{family}"
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        keys = sorted((k for k in totals if k[0] == family), key=lambda k: tuple(str(p) for p in k))
        if kind == "counter":
            lines += [f"{name}{_labels(label_names, k[1:])} {_number(totals[k])}" for k in keys]
            continue
        series = sorted({k[1:1 + len(label_names)] for k in keys})
        for labels in series:
            counts = [totals.get((family, *labels, "bucket", b), 0) for b in range(len(LATENCY_BUCKETS) + 1)]
            cumulative = 0.0
            for le, count in zip((*LATENCY_BUCKETS, math.inf), counts):
                cumulative += count
                bound = "+Inf" if le == math.inf else repr(le)
                lines.append(f"{name}_bucket{_labels((*label_names, 'le'), (*labels, bound))} {_number(cumulative)}")
            lines.append(f"{name}_sum{_labels(label_names, labels)} {_number(totals.get((family, *labels, 'sum'), 0))}")
            lines.append(f"{name}_count{_labels(label_names, labels)} {_number(cumulative)}")
    return "\n".join(lines) + "\n"


def _labels(names: Iterable[str], values: Iterable[Any]) -> str:
    return "{" + ",".join(f'{n}="{_escape(str(v))}"' for n, v in zip(names, values)) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def default_directory() -> Path | None:
    """A directory shared by the workers of this server, and by no other server.

    uvicorn's and gunicorn's workers are children of one supervisor and run its command line in
    its working directory, so the directory is named after the parent process (its pid and, on
    Linux, its start time, so a reused pid is another server) and a digest of the command line
    and working directory (servers whose parent is init or systemd differ there: their port at
    least). Directories left by servers whose parent is gone are removed. None when the temp
    directory belongs to someone else or cannot be written.
    """
    base = base_directory()
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        if base.stat().st_uid != os.getuid():
            logger.warning(JsonMessage({"event": "metrics_unshared", "directory": str(base),
                                       "error": "owned by another user"}))
            return None
        _remove_dead(base)
    except OSError as e:
        logger.warning(JsonMessage({"event": "metrics_unshared", "directory": str(base), "error": str(e)}))
        return None
    return server_directory(os.getppid(), [os.getcwd(), *sys.argv])


def base_directory() -> Path:
    return Path(tempfile.gettempdir()) / f"sklearn-serve-metrics-{os.getuid()}"


def server_directory(parent: int, command: list[str]) -> Path:
    """The directory of the server whose workers are children of process `parent` running `command`."""
    digest = hashlib.sha256(json.dumps(command).encode()).hexdigest()[:12]
    return base_directory() / f"{parent}-{_start_time(parent)}-{digest}"


def _start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot (0 where /proc cannot tell)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def _remove_dead(base: Path) -> None:
    if not Path("/proc/self/stat").exists():
        return
    for entry in base.iterdir():
        match = _SERVER_DIR.fullmatch(entry.name)
        if match and entry.is_dir() and _start_time(int(match[1])) != int(match[2]):
            shutil.rmtree(entry, ignore_errors=True)
