"""A bounded load of many concurrent clients, and what the service answered each of them.

Each client is a thread with its own keep-alive connection (http.client, a timeout on every call)
and its own seeded random choices, sending a mix of: new predictions (single, and batches of 3),
exact retries of its own stored predictions, conflicting duplicates of them (another observation
under the same id), outcome updates of them, and predictions of a few ids that every client
contests with its own observation (one wins, the others get 409). Every request and its answer
is kept, so a test can say afterwards what was acknowledged and must be stored.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.records import canonical_json, id_key
from tests.helpers import README_PASSENGER
from tests.reliability.support import Client

CONTESTED = [f"contested-{k}" for k in range(8)]


@dataclass
class Sent:
    """One request and its answer (`status` None: no answer came, e.g. the server was killed)."""

    client: int
    kind: str
    path: str
    items: list[tuple[Any, dict[str, Any]]]
    true_class: int | None
    status: int | None
    body: Any
    started: float
    elapsed: float
    error: str | None = None


@dataclass
class Totals:
    sent: list[Sent] = field(default_factory=list)

    @property
    def answered(self) -> list[Sent]:
        return [s for s in self.sent if s.status is not None]

    @property
    def unanswered(self) -> list[Sent]:
        return [s for s in self.sent if s.status is None]

    def statuses(self) -> dict[int | None, int]:
        counts: dict[int | None, int] = {}
        for s in self.sent:
            counts[s.status] = counts.get(s.status, 0) + 1
        return counts

    def acknowledged(self) -> dict[str, dict[str, Any]]:
        """id key -> the latest record a 200 answered with, in the order answers came back per client.

        Only the owning client changes its own ids (updates), one request at a time, so its last
        answer is the stored state; contested ids are never updated, so any 200 for them will do.
        """
        latest: dict[str, tuple[float, dict[str, Any]]] = {}
        for s in self.sent:
            if s.status != 200:
                continue
            records = s.body["predictions"] if "predictions" in s.body else [s.body]
            finished = s.started + s.elapsed
            for record in records:
                key = id_key(record["id"])
                if key not in latest or latest[key][0] <= finished:
                    latest[key] = (finished, record)
        return {key: record for key, (_, record) in latest.items()}

    def attempted_ids(self) -> set[str]:
        """Every id any prediction request named, answered or not."""
        return {id_key(prediction_id) for s in self.sent if s.path == "/predict" for prediction_id, _ in s.items}


def observation(client: int, serial: int) -> dict[str, Any]:
    return {**README_PASSENGER, "Age": float(1 + (client * 7 + serial) % 70), "Fare": serial + 0.5,
            "Sex": "female" if (client + serial) % 2 else "male", "Pclass": 1 + serial % 3}


class Load:
    """`clients` threads, each sending up to `rounds` requests, until done or `stop` is set.

    With several ports (servers sharing one store), client n talks to `ports[n % len(ports)]`.

    Loads with different `seeds` use different ids (new and contested), so several can share a store.
    """

    def __init__(
        self,
        port: int | Sequence[int],
        clients: int,
        rounds: int,
        *,
        seed: int = 0,
        timeout: float = 30.0,
        stop: threading.Event | None = None,
        stop_on_error: bool = False,
        on_answer: Callable[[Sent], None] | None = None,
    ) -> None:
        self.ports = [port] if isinstance(port, int) else list(port)
        self.clients = clients
        self.rounds = rounds
        self.seed = seed
        self.timeout = timeout
        self.stop = stop or threading.Event()
        self.stop_on_error = stop_on_error
        self.on_answer = on_answer
        self.totals = Totals()
        self._lock = threading.Lock()

    def run(self, join_timeout: float = 600.0) -> Totals:
        threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(self.clients)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + join_timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.stop.set()
        assert not any(t.is_alive() for t in threads), "load clients did not finish in time"
        return self.totals

    def _client(self, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        client = Client(self.ports[n % len(self.ports)], timeout=self.timeout)
        own: dict[str, tuple[Any, dict[str, Any]]] = {}  # id key -> (id, observation) of its stored predictions
        serial = 0
        try:
            for _ in range(self.rounds):
                if self.stop.is_set():
                    return
                kind, path, items, true_class, serial = self._next(n, rng, own, serial)
                if path == "/update":
                    payload: dict[str, Any] = {"id": items[0][0], "true_class": true_class}
                elif kind == "batch":
                    payload = {"observations": [{"id": i, "observation": o} for i, o in items]}
                else:
                    payload = {"id": items[0][0], "observation": items[0][1]}
                started = time.monotonic()
                try:
                    reply = client.request("POST", path, payload)
                except (OSError, http.client.HTTPException) as e:
                    self._keep(Sent(n, kind, path, items, true_class, None, None, started,
                                    time.monotonic() - started, repr(e)))
                    if self.stop_on_error:
                        return
                    continue
                try:
                    answer = reply.json()
                except ValueError:
                    answer = {"unparsed": reply.body[:200].decode(errors="replace")}
                sent = Sent(n, kind, path, items, true_class, reply.status, answer, started,
                            time.monotonic() - started)
                self._keep(sent)
                if reply.status == 200 and kind in ("new", "batch"):
                    for prediction_id, obs in items:
                        own[id_key(prediction_id)] = (prediction_id, obs)
        finally:
            client.close()

    def _next(
        self, n: int, rng: random.Random, own: dict[str, tuple[Any, dict[str, Any]]], serial: int
    ) -> tuple[str, str, list[tuple[Any, dict[str, Any]]], int | None, int]:
        roll = rng.random()
        mine = list(own.values())
        if mine and roll < 0.15:
            return "retry", "/predict", [rng.choice(mine)], None, serial
        if mine and roll < 0.25:
            prediction_id, obs = rng.choice(mine)
            return "conflict", "/predict", [(prediction_id, {**obs, "Age": obs["Age"] + 0.5})], None, serial
        if mine and roll < 0.35:
            prediction_id, obs = rng.choice(mine)
            return "update", "/update", [(prediction_id, obs)], rng.randrange(2), serial
        if roll < 0.45:
            contested = f"{rng.choice(CONTESTED)}-run-{self.seed}"
            return "contested", "/predict", [(contested, {**README_PASSENGER, "Age": float(10 + n)})], None, serial
        if roll < 0.60:
            items = []
            for _ in range(3):
                serial += 1
                items.append((self._new_id(n, serial), observation(n, serial)))
            return "batch", "/predict", items, None, serial
        serial += 1
        return "new", "/predict", [(self._new_id(n, serial), observation(n, serial))], None, serial

    def _new_id(self, n: int, serial: int) -> Any:
        # Half integers, half strings; never the same for two clients, or for two loads of other seeds.
        if serial % 2:
            return self.seed * 100_000_000 + n * 1_000_000 + serial
        return f"run-{self.seed}-client-{n}-{serial}"

    def _keep(self, sent: Sent) -> None:
        with self._lock:
            self.totals.sent.append(sent)
        if self.on_answer is not None:
            self.on_answer(sent)


def check_answers(totals: Totals) -> list[str]:
    """What is wrong with the answers themselves; [] when every one is what the API promises."""
    problems: list[str] = []
    expected = {"new": {200}, "batch": {200}, "retry": {200}, "update": {200}, "conflict": {409},
                "contested": {200, 409}}
    for s in totals.answered:
        if s.status not in expected[s.kind]:
            problems.append(f"{s.kind} {s.items[0][0]!r}: {s.status} {str(s.body)[:200]}")
        elif s.status == 200 and s.path == "/predict":
            records = s.body["predictions"] if s.kind == "batch" else [s.body]
            for (prediction_id, obs), record in zip(s.items, records):
                if record["id"] != prediction_id or canonical_json(record["observation"]) != canonical_json(obs):
                    problems.append(f"{s.kind} {prediction_id!r} answered with another record: {record}")
        elif s.status == 409 and s.body.get("type", "").rsplit("/", 1)[-1] != "conflicting-prediction":
            problems.append(f"409 that is not a conflicting-prediction problem: {s.body}")
    # Contested ids: one observation wins; only the client whose observation it is gets 200.
    winners: dict[Any, set[str]] = {}
    for s in totals.answered:
        if s.kind == "contested" and s.status == 200:
            winners.setdefault(s.items[0][0], set()).add(canonical_json(s.body["observation"]))
    problems += [f"contested {i!r} was won by {len(w)} observations" for i, w in winners.items() if len(w) != 1]
    for s in totals.answered:
        if s.kind == "contested" and s.status == 409 and canonical_json(s.items[0][1]) in winners.get(
            s.items[0][0], set()
        ):
            problems.append(f"contested {s.items[0][0]!r}: the winning observation got 409")
    return problems


def check_retries(totals: Totals) -> list[str]:
    """Every exact retry answered the stored record: the same as the latest answer before it, field for field."""
    problems: list[str] = []
    by_client: dict[int, list[Sent]] = {}
    for s in totals.answered:
        by_client.setdefault(s.client, []).append(s)
    for sent in by_client.values():
        latest: dict[str, dict[str, Any]] = {}
        for s in sorted(sent, key=lambda s: s.started):
            if s.status != 200:
                continue
            records = s.body["predictions"] if s.kind == "batch" else [s.body]
            for record in records:
                key = id_key(record["id"])
                if s.kind == "retry" and key in latest and record != latest[key]:
                    problems.append(f"retry of {record['id']!r} answered {record}, stored was {latest[key]}")
                latest[key] = record
    return problems
