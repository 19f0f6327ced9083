"""kill -9 of the whole server (supervisor and both workers) in the middle of the concurrent load.

Then the server is started again on the same SQLite file: every prediction that got a 200 is
there and intact (same observation, proba, class, times, model version; its outcome is the last
acknowledged one, or the one an update in flight at the kill asked for), nothing is stored that no
client sent, and the file passes SQLite's integrity check. `make soak` repeats the kill 5 times.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from adapters.storage import SqliteStore
from core.model import load_model
from core.records import canonical_json, id_key
from tests.reliability.load import Load, Sent, Totals, check_answers, check_retries
from tests.reliability.support import (
    Client,
    Server,
    record_figures,
    scaled,
    sqlite_integrity,
    sqlite_rows,
    uvicorn,
)
from tests.storage.aggregate_checks import assert_aggregates_match_records

pytestmark = pytest.mark.slow

CLIENTS = 32
KILLS = scaled(2, 5)
# The kill comes after this many acknowledged requests (or after KILL_AFTER_SECONDS, whichever first).
KILL_AFTER_ACKS = scaled(300, 1500)
KILL_AFTER_SECONDS = 20.0
STABLE = ("id", "observation", "proba", "predicted_class", "threshold", "model_version", "created_at", "warnings")


def load_until_killed(server: Server, seed: int) -> Totals:
    """The load, with the server's process group killed by SIGKILL once enough answers came back."""
    acks = 0
    enough = threading.Event()
    lock = threading.Lock()

    def count(sent: Sent) -> None:
        nonlocal acks
        if sent.status == 200:
            with lock:
                acks += 1
                if acks >= KILL_AFTER_ACKS:
                    enough.set()

    stop = threading.Event()
    load = Load(server.port, CLIENTS, rounds=100_000, seed=seed, timeout=15, stop=stop, stop_on_error=True,
                on_answer=count)
    runner = threading.Thread(target=load.run, kwargs={"join_timeout": 120}, daemon=True)
    runner.start()
    enough.wait(KILL_AFTER_SECONDS)
    server.process.kill9()
    stop.set()
    runner.join(60)
    assert not runner.is_alive()
    return load.totals


def allowed_outcomes(totals: Totals, acknowledged: dict[str, dict[str, Any]]) -> dict[str, set[Any]]:
    """Per id: the last acknowledged true_class, plus the value of any update that got no answer."""
    allowed = {key: {record["true_class"]} for key, record in acknowledged.items()}
    for sent in totals.unanswered:
        if sent.path == "/update":
            allowed.setdefault(id_key(sent.items[0][0]), set()).add(sent.true_class)
    return allowed


def all_pages(server: Server) -> dict[str, dict[str, Any]]:
    """Every stored prediction, through the listing, page by page."""
    client = server.client(timeout=30)
    records: dict[str, dict[str, Any]] = {}
    cursor = ""
    for _ in range(1000):
        page = client.request("GET", "/predictions?limit=1000" + (f"&cursor={quote(cursor)}" if cursor else ""))
        assert page.status == 200, page.body[:300]
        records.update((id_key(r["id"]), r) for r in page.json()["predictions"])
        if not (cursor := page.json()["next_cursor"]):
            break
    client.close()
    return records


def read_one(client: Client, prediction_id: Any) -> dict[str, Any]:
    target = str(prediction_id) if isinstance(prediction_id, int) else quote(f'"{prediction_id}"', safe="")
    reply = client.request("GET", f"/predictions/{target}")
    assert reply.status == 200, (prediction_id, reply.status)
    return reply.json()  # type: ignore[no-any-return]


def sample(records: dict[str, dict[str, Any]], size: int) -> list[tuple[str, dict[str, Any]]]:
    return random.Random(0).sample(sorted(records.items()), min(size, len(records)))


def test_every_acknowledged_prediction_survives_kill_9_of_the_server_mid_load(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    env = {"STORE_URL": f"sqlite:///{path}"}
    acknowledged: dict[str, dict[str, Any]] = {}
    allowed: dict[str, set[Any]] = {}
    attempted: set[str] = set()
    sent = unanswered = 0
    for kill in range(KILLS):
        with uvicorn(env, tmp_path / f"server-{kill}.log", workers=2) as server:
            totals = load_until_killed(server, seed=100 + kill)
            log = server.process.output()
        statuses = totals.statuses()
        assert not [s for s in statuses if s is not None and s >= 500], statuses
        assert check_answers(totals) == []
        assert check_retries(totals) == []
        assert "Traceback" not in log
        assert totals.unanswered, "the kill came after the load had finished: nothing was in flight"
        run_acknowledged = totals.acknowledged()
        acknowledged.update(run_acknowledged)
        for key, values in allowed_outcomes(totals, run_acknowledged).items():
            allowed[key] = values
        attempted |= totals.attempted_ids()
        sent += len(totals.sent)
        unanswered += len(totals.unanswered)

    with uvicorn(env, tmp_path / "server-after.log", workers=2) as server:
        client = server.client(timeout=30)
        listed = all_pages(server)
        by_id = {key: read_one(client, record["id"]) for key, record in sample(acknowledged, 50)}
        client.close()
        assert "Traceback" not in server.process.output()

    missing = [record["id"] for key, record in acknowledged.items() if key not in listed]
    changed = [
        (record, listed[key])
        for key, record in acknowledged.items()
        if key in listed and (any(listed[key][f] != record[f] for f in STABLE)
                              or listed[key]["true_class"] not in allowed[key])
    ]
    assert all(by_id[key] == listed[key] for key in by_id), "GET /predictions/{id} and the listing disagree"
    rows = sqlite_rows(path)
    record_figures(
        "crash", kills=KILLS, workers=2, clients=CLIENTS, requests=sent, unanswered_at_kill=unanswered,
        acknowledged_records=len(acknowledged), stored_rows=len(rows), records_lost=len(missing),
        records_changed=len(changed),
    )
    assert missing == []
    assert changed == []
    assert sqlite_integrity(path) == "ok"
    assert set(rows) <= attempted, "a row is stored that no client sent"
    for key, record in acknowledged.items():
        assert rows[key]["observation"] == canonical_json(record["observation"])
        assert rows[key]["proba"] == record["proba"]
    # The quality counters were written in the same transactions as the records: after the
    # kills they still add up to exactly what the stored records give.
    store = SqliteStore(path)
    try:
        assert_aggregates_match_records(store, [load_model()])
    finally:
        store.close()
