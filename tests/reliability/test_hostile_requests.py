"""Hostile and broken requests: each gets the right 4xx problem, and the store is unchanged after it.

Run against the in-memory store, SQLite on a real temp file (both in-process), and a real uvicorn
on SQLite (its file read directly). "Unchanged" compares the full listing, and for SQLite every
column of every row of the file, before and after each request. Injection strings that are valid
ids or categories are stored verbatim and read back identically, with the table intact.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from adapters.storage import MemoryStore, SqliteStore
from core.model import Model, load_model
from core.ports import PredictionStore
from tests.helpers import README_PASSENGER, SteppingClock, app_client, serving_service
from tests.reliability.support import (
    Reply,
    Server,
    assert_problem,
    create_table,
    free_port,
    sqlite_aggregates,
    sqlite_integrity,
    sqlite_rows,
    start_moto,
    uvicorn,
)

SEEDED: list[Any] = [1, 2, -7, "a", "' OR '1'='1-seeded", "日本"]
TEN_MB = 10 * 1024 * 1024

SQL_INJECTIONS = [
    "1; DROP TABLE predictions; --",
    "' OR '1'='1",
    "' OR 1=1 --",
    "\" OR \"\"=\"",
    "Robert'); DROP TABLE predictions;--",
    "1 UNION SELECT id_key, observation FROM predictions",
    "'; UPDATE predictions SET true_class = 1; --",
    "%' OR id_key LIKE '%",
    "?", "??", ":id", "$1",
]
DYNAMODB_INJECTIONS = [
    "#pk = :v OR attribute_exists(pk)",
    "attribute_not_exists(pk)",
    ":v",
    "#days",
    "\"#days\"",
    "{\"S\": \"x\"}",
    "pk = :pk AND begins_with(day_sort, :s)",
]
ODD_BUT_VALID = [
    "../../etc/passwd", "%00", "%s%s%n", "<script>alert(1)</script>", "${jndi:ldap://127.0.0.1/x}",
    "日本語🙂", "\u202eevil", "a\u200bb", "\u0085", "\u2028", "e\u0301", " leading and trailing ", "x" * 256,
]


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def predict_body(**changes: Any) -> dict[str, Any]:
    return {"id": 1000, "observation": dict(README_PASSENGER), **changes}


def observation_with(**changes: Any) -> dict[str, Any]:
    return {"id": 1000, "observation": {**README_PASSENGER, **changes}}


def ten_mb_chunks() -> Iterator[bytes]:
    for _ in range(10):
        yield b" " * (1024 * 1024)


@dataclass(frozen=True)
class Hostile:
    name: str
    status: int
    problem: str
    content: bytes | Callable[[], Iterator[bytes]] | None = None
    method: str = "POST"
    path: str = "/predict"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


H = Hostile
JSON_400 = "malformed-request"
INVALID = "validation"
HOSTILE: list[Any] = [
    # Not JSON, or not JSON this API reads.
    H("empty body", 400, JSON_400, b""),
    H("whitespace only", 400, JSON_400, b" \r\n\t "),
    H("not json", 400, JSON_400, b"hello"),
    H("truncated json", 400, JSON_400, b'{"id": 1, "observation": {'),
    H("single quotes", 400, JSON_400, b"{'id': 1}"),
    H("trailing garbage", 400, JSON_400, body(predict_body()) + b"xyz"),
    H("deeply nested arrays", 400, JSON_400, b"[" * 100_000 + b"]" * 100_000),
    H("deeply nested objects", 400, JSON_400, b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    H("1e400", 400, JSON_400, body(predict_body()).replace(b"7.25", b"1e400")),
    H("-1e400", 400, JSON_400, body(predict_body()).replace(b"7.25", b"-1e400")),
    H("10**400", 400, JSON_400, body(predict_body()).replace(b"7.25", str(10**400).encode())),
    H("1e400 as id", 400, JSON_400, body(predict_body()).replace(b"1000", b"1e400")),
    H("10**400 as id", 400, JSON_400, body(predict_body()).replace(b"1000", str(10**400).encode())),
    H("NaN literal", 400, JSON_400, body(predict_body()).replace(b"7.25", b"NaN")),
    H("Infinity literal", 400, JSON_400, body(predict_body()).replace(b"7.25", b"Infinity")),
    H("-Infinity literal", 400, JSON_400, body(predict_body()).replace(b"7.25", b"-Infinity")),
    H("lone surrogate in id", 400, JSON_400, b'{"id": "\\ud800", "observation": {}}'),
    H("lone surrogate in a category", 400, JSON_400, body(predict_body()).replace(b'"S"', b'"\\udfff"')),
    H("byte order mark", 400, JSON_400, b"\xef\xbb\xbf" + body(predict_body())),
    H("invalid utf-8", 400, JSON_400, body(predict_body()).replace(b'"S"', b'"\xff\xfe"')),
    H("utf-16", 400, JSON_400, json.dumps(predict_body()).encode("utf-16")),
    H("gzip body as gzip", 415, "unsupported-media-type", gzip.compress(body(predict_body())),
      headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}),
    H("plain json labelled gzip", 415, "unsupported-media-type", body(predict_body()),
      headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}),
    H("duplicate keys", 400, JSON_400, b'{"id": 1000, "id": 1001, "observation": %s}' % body(README_PASSENGER)),
    H("duplicate keys in the observation", 400, JSON_400,
      b'{"id": 1000, "observation": {"Sex": "female", %s}' % body(README_PASSENGER)[1:]),
    # Too large.
    H("10 MB body", 413, "body-too-large", b" " * TEN_MB),
    H("10 MB body, chunked", 413, "body-too-large", ten_mb_chunks),
    # Not a JSON media type.
    H("text/plain", 415, "unsupported-media-type", body(predict_body()), headers={"Content-Type": "text/plain"}),
    H("form", 415, "unsupported-media-type", b"id=1000",
      headers={"Content-Type": "application/x-www-form-urlencoded"}),
    H("multipart", 415, "unsupported-media-type", b"--b\r\n\r\n{}\r\n--b--",
      headers={"Content-Type": "multipart/form-data; boundary=b"}),
    H("json in latin-1", 415, "unsupported-media-type", body(predict_body()),
      headers={"Content-Type": "application/json; charset=latin-1"}),
    H("xml", 415, "unsupported-media-type", b"<id>1</id>", headers={"Content-Type": "application/xml"}),
    # JSON, but not a prediction request.
    H("json array", 422, INVALID, b"[1, 2, 3]"),
    H("json string", 422, INVALID, b'"predict me"'),
    H("json null", 422, INVALID, b"null"),
    H("json number", 422, INVALID, b"42"),
    H("missing id", 422, INVALID, body({"observation": README_PASSENGER})),
    H("missing observation", 422, INVALID, body({"id": 1000})),
    H("id with NUL", 422, INVALID, body(predict_body(id="\u0000abc"))),
    H("id with newline", 422, INVALID, body(predict_body(id="a\nb"))),
    H("id with escape sequence", 422, INVALID, body(predict_body(id="\u001b[31mred"))),
    H("id with DEL", 422, INVALID, body(predict_body(id="a\u007f"))),
    H("negative float id", 422, INVALID, body(predict_body(id=-1.5))),
    H("float id", 422, INVALID, body(predict_body(id=1.5))),
    H("id 2**53", 422, INVALID, body(predict_body(id=2**53))),
    H("id 10**30", 422, INVALID, body(predict_body(id=10**30))),
    H("id 1e300", 422, INVALID, body(predict_body(id=1e300))),
    H("id true", 422, INVALID, body(predict_body(id=True))),
    H("id null", 422, INVALID, body(predict_body(id=None))),
    H("id list", 422, INVALID, body(predict_body(id=[1]))),
    H("id object", 422, INVALID, body(predict_body(id={"$ne": None}))),
    H("empty id", 422, INVALID, body(predict_body(id=""))),
    H("id of 300 characters", 422, INVALID, body(predict_body(id="x" * 300))),
    H("observation as a list", 422, INVALID, body(predict_body(observation=list(README_PASSENGER.values())))),
    H("observation as a string", 422, INVALID, body(predict_body(observation=json.dumps(README_PASSENGER)))),
    H("a model_dir key", 422, INVALID, body(predict_body(model_dir="/tmp/evil"))),
    H("strict as a string", 422, INVALID, body(predict_body(strict="yes"))),
    H("strict with an unknown feature", 422, INVALID,
      body({"id": 1000, "observation": {**README_PASSENGER, "Name": "x"}, "strict": True})),
    H("age as a string", 422, INVALID, body(observation_with(Age="22"))),
    H("class as a boolean", 422, INVALID, body(observation_with(Pclass=True))),
    H("negative age", 422, INVALID, body(observation_with(Age=-1))),
    H("fractional class", 422, INVALID, body(observation_with(Pclass=2.5))),
    H("sex as a number", 422, INVALID, body(observation_with(Sex=1))),
    H("category as an object", 422, INVALID, body(observation_with(Embarked={"$gt": ""}))),
    H("fare beyond 1e15", 422, INVALID, body(observation_with(Fare=1e300))),
    # Batches: all or nothing.
    H("batch of 101", 422, INVALID, body({"observations": [{"id": 2000 + n, "observation": README_PASSENGER}
                                                            for n in range(101)]})),
    H("batch not a list", 422, INVALID, body({"observations": {"id": 1000, "observation": README_PASSENGER}})),
    H("empty batch", 422, INVALID, body({"observations": []})),
    H("batch with one bad item", 422, INVALID, body({"observations": [
        {"id": 3000, "observation": README_PASSENGER}, {"id": 3001, "observation": {**README_PASSENGER, "Age": "old"}},
        {"id": 3002, "observation": README_PASSENGER}]})),
    H("batch item without id", 422, INVALID, body({"observations": [{"observation": README_PASSENGER}]})),
    H("batch repeating an id with another observation", 422, INVALID, body({"observations": [
        {"id": 4000, "observation": README_PASSENGER},
        {"id": 4000, "observation": {**README_PASSENGER, "Age": 50.0}}]})),
    H("batch holding a conflicting duplicate", 409, "conflicting-prediction", body({"observations": [
        {"id": 5000, "observation": README_PASSENGER}, {"id": 1, "observation": {**README_PASSENGER, "Age": 99.0}}]})),
    H("conflicting duplicate of a stored id", 409, "conflicting-prediction",
      body({"id": "' OR '1'='1-seeded", "observation": {**README_PASSENGER, "Age": 99.0}})),
    # Outcomes.
    H("true_class 2", 422, INVALID, body({"id": 1, "true_class": 2}), path="/update"),
    H("true_class yes", 422, INVALID, body({"id": 1, "true_class": "yes"}), path="/update"),
    H("true_class as a string", 422, INVALID, body({"id": 1, "true_class": "1"}), path="/update"),
    H("true_class null", 422, INVALID, body({"id": 1, "true_class": None}), path="/update"),
    H("true_class 0.5", 422, INVALID, body({"id": 1, "true_class": 0.5}), path="/update"),
    H("true_class missing", 422, INVALID, body({"id": 1}), path="/update"),
    H("update with an extra key", 422, INVALID, body({"id": 1, "true_class": 1, "proba": 1.0}), path="/update"),
    H("update of a 300 character id", 422, INVALID, body({"id": "x" * 300, "true_class": 1}), path="/update"),
    H("update of an sql injection", 404, "unknown-prediction", body({"id": "' OR '1'='1", "true_class": 1}),
      path="/update"),
    H("update of a drop table", 404, "unknown-prediction",
      body({"id": "1; DROP TABLE predictions; --", "true_class": 1}), path="/update"),
    H("update of a dynamodb condition", 404, "unknown-prediction",
      body({"id": "#pk = :v OR attribute_exists(pk)", "true_class": 1}), path="/update"),
    H("update not json", 400, JSON_400, b"id=1&true_class=1", path="/update"),
    # Reads and routes.
    H("get of an sql injection", 404, "unknown-prediction", None, "GET", "/predictions/" + quote("' OR '1'='1")),
    H("get of a NUL", 404, "unknown-prediction", None, "GET", "/predictions/%00"),
    H("get of a 30 digit id", 404, "unknown-prediction", None, "GET", "/predictions/" + "9" * 30),
    H("get of a 300 character id", 404, "unknown-prediction", None, "GET", "/predictions/" + "x" * 300),
    H("limit 0", 422, INVALID, None, "GET", "/predictions?limit=0"),
    H("limit -1", 422, INVALID, None, "GET", "/predictions?limit=-1"),
    H("limit 1e3", 422, INVALID, None, "GET", "/predictions?limit=1e3"),
    H("limit of 20 digits", 422, INVALID, None, "GET", "/predictions?limit=" + "9" * 20),
    H("limit as sql", 422, INVALID, None, "GET", "/predictions?limit=" + quote("1; DROP TABLE predictions")),
    H("made-up cursor", 422, INVALID, None, "GET", "/predictions?cursor=abc"),
    H("cursor of 10000 characters", 422, INVALID, None, "GET", "/predictions?cursor=" + "A" * 10_000),
    H("cursor as sql", 422, INVALID, None, "GET", "/predictions?cursor=" + quote("' OR '1'='1")),
    H("post to the listing", 405, "method-not-allowed", b"{}", "POST", "/predictions"),
    H("delete a prediction", 405, "method-not-allowed", None, "DELETE", "/predictions/1"),
    H("put an outcome", 405, "method-not-allowed", body({"id": 1, "true_class": 1}), "PUT", "/update"),
    H("get predict", 405, "method-not-allowed", None, "GET", "/predict"),
    H("unknown route", 404, "not-found", None, "GET", "/admin"),
    H("trailing slash", 404, "not-found", b"{}", "POST", "/predict/"),
]


def case_id(hostile: Hostile) -> str:
    return hostile.name.replace(" ", "-")


class Target:
    """The app and its store, reached in-process or through uvicorn; snapshots of what is stored."""

    def __init__(self, send: Callable[[Hostile], Reply], snapshot: Callable[[], Any]) -> None:
        self.send = send
        self.snapshot = snapshot


def reply_of(client: TestClient, method: str, path: str, content: Any, headers: dict[str, str]) -> Reply:
    response = client.request(method, path, content=content() if callable(content) else content, headers=headers)
    return Reply(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)


def listing(store: PredictionStore) -> list[dict[str, Any]]:
    records, cursor = [], None
    for _ in range(100):
        page = store.list(1000, cursor)
        records += [record.as_json() for record in page.items]
        if (cursor := page.next_cursor) is None:
            return records
    raise AssertionError("the listing does not end")


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


def seed(send: Callable[..., Reply]) -> None:
    for n, prediction_id in enumerate(SEEDED):
        observation = {**README_PASSENGER, "Age": 20.0 + n}
        reply = send("POST", "/predict", body({"id": prediction_id, "observation": observation}),
                     {"Content-Type": "application/json"})
        assert reply.status == 200, reply.body
    assert send("POST", "/update", body({"id": 2, "true_class": 1}), {"Content-Type": "application/json"}).status == 200


@pytest.fixture(scope="module", params=["memory", "sqlite-file", "uvicorn-sqlite-file"])
def target(request: pytest.FixtureRequest, model: Model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    kind = request.param
    tmp = tmp_path_factory.mktemp(kind)
    if kind == "uvicorn-sqlite-file":
        path = tmp / "hostile.db"
        with uvicorn({"STORE_URL": f"sqlite:///{path}"}, tmp / "server.log") as server:
            client = server.client(timeout=30)

            def send_http(method: str, path_: str, content: Any, headers: dict[str, str]) -> Reply:
                return client.request(method, path_, content() if callable(content) else content, headers)

            seed(send_http)

            def snapshot_http() -> Any:
                listed, stats = client.request("GET", "/predictions?limit=1000"), client.request("GET", "/stats")
                assert listed.status == 200 and stats.status == 200
                return listed.json(), sqlite_rows(path), stats.json(), sqlite_aggregates(path)

            yield Target(lambda h: send_http(h.method, h.path, h.content, h.headers), snapshot_http)
            client.close()
            assert "Traceback" not in server.process.output()
        return
    store: PredictionStore = MemoryStore() if kind == "memory" else SqliteStore(tmp / "hostile.db")
    with app_client(serving_service(model, store, SteppingClock(timedelta(milliseconds=1)))) as client:

        def send(method: str, path_: str, content: Any, headers: dict[str, str]) -> Reply:
            return reply_of(client, method, path_, content, headers)

        seed(send)

        def snapshot() -> Any:
            rows = sqlite_rows(tmp / "hostile.db") if kind == "sqlite-file" else None
            return listing(store), rows, store.aggregates(), store.aggregate_totals()

        yield Target(lambda h: send(h.method, h.path, h.content, h.headers), snapshot)
    if isinstance(store, SqliteStore):
        store.close()


@pytest.mark.parametrize("hostile", HOSTILE, ids=case_id)
def test_a_hostile_request_gets_the_right_4xx_problem_and_changes_nothing(target: Target, hostile: Hostile) -> None:
    before = target.snapshot()

    reply = target.send(hostile)

    problem = assert_problem(reply, hostile.status)
    assert problem["type"] == f"https://errors.sklearn-serve.dev/{hostile.problem}", problem
    assert problem["title"] and problem["detail"]
    assert reply.headers.get("x-request-id")
    assert target.snapshot() == before


def test_the_table_holds_at_least_thirty_hostile_requests() -> None:
    assert len(HOSTILE) >= 30


# --- Injection strings that are valid ids and categories -------------------------------------

VALID_STRINGS = [*SQL_INJECTIONS, *DYNAMODB_INJECTIONS, *ODD_BUT_VALID]


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    moto = start_moto(port, tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        moto.stop()


@pytest.fixture(params=["memory", "sqlite-file", "dynamodb-moto-server"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, Callable[[], Any]]]:
    """A real uvicorn (so paths are decoded as in production) on each kind of store."""
    path = tmp_path / "injection.db"
    env, rows = {"STORE_URL": "memory://"}, lambda: None
    if request.param == "sqlite-file":
        env, rows = {"STORE_URL": f"sqlite:///{path}"}, lambda: sqlite_rows(path)
    elif request.param == "dynamodb-moto-server":
        endpoint = request.getfixturevalue("moto_endpoint")
        table = f"injection-{uuid.uuid4().hex[:8]}"
        create_table(table, endpoint, tmp_path / "create-table.log")
        env = {"STORE_URL": f"dynamodb://{table}", "AWS_ENDPOINT_URL_DYNAMODB": endpoint}
    with uvicorn(env, tmp_path / "server.log") as server:
        yield server, rows
        assert "Traceback" not in server.process.output()
    if request.param == "sqlite-file":
        assert sqlite_integrity(path) == "ok"


def path_of(prediction_id: str) -> str:
    """The unambiguous path of a string id: wrapped in double quotes, percent-encoded."""
    return "/predictions/" + quote(f'"{prediction_id}"', safe="")


def test_injection_strings_that_are_valid_ids_and_categories_are_stored_verbatim_and_read_back_identically(
    served: tuple[Server, Callable[[], dict[str, Any] | None]],
) -> None:
    server, rows = served
    client = server.client(timeout=30)
    answered = {}
    for text in VALID_STRINGS:
        observation = {**README_PASSENGER, "Embarked": text, "Cabin": text}
        reply = client.request("POST", "/predict", {"id": text, "observation": observation})
        assert reply.status == 200, (text, reply.body[:300])
        record = reply.json()
        assert record["id"] == text and record["observation"] == observation
        answered[text] = record

    for text, record in answered.items():
        read = client.request("GET", path_of(text))
        assert read.status == 200, (text, read.body[:300])
        assert read.json() == record
        retried = client.request("POST", "/predict", {"id": text, "observation": record["observation"]})
        assert retried.json() == record
        updated = client.request("POST", "/update", {"id": text, "true_class": 1})
        assert updated.status == 200
        assert updated.json()["id"] == text and updated.json()["true_class"] == 1

    listed = client.request("GET", "/predictions?limit=1000").json()["predictions"]
    assert sorted(r["id"] for r in listed) == sorted(VALID_STRINGS)
    assert all(r["true_class"] == 1 for r in listed)
    stored = rows()
    if stored is not None:  # the SQLite table itself: one row per id, keyed by the id's JSON text
        assert set(stored) == {json.dumps(text, ensure_ascii=False) for text in VALID_STRINGS}
        assert all(json.loads(row["observation"])["Embarked"] == json.loads(key) for key, row in stored.items())
    client.close()


def test_the_sqlite_table_survives_every_injection_with_its_schema_intact(model: Model, tmp_path: Path) -> None:
    path = tmp_path / "schema.db"
    store = SqliteStore(path)
    client = app_client(serving_service(model, store, SteppingClock(timedelta(milliseconds=1))),
                        raise_server_exceptions=True)
    schema_before = None
    for n, text in enumerate(VALID_STRINGS):
        client.post("/predict", json={"id": text, "observation": README_PASSENGER})
        client.post("/update", json={"id": text, "true_class": n % 2})
        client.get(path_of(text))
        client.get("/predictions", params={"cursor": text})
        if schema_before is None:
            schema_before = _schema(path)
    assert _schema(path) == schema_before
    assert len(sqlite_rows(path)) == len(VALID_STRINGS)
    assert sqlite_integrity(path) == "ok"
    client.close()
    store.close()


def _schema(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        conn.close()
