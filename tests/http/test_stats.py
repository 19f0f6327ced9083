"""GET /stats: the live quality figures equal a recomputation by hand from the stored records."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from adapters.storage.memory import MemoryStore
from adapters.storage.sqlite import SqliteStore
from core.errors import StorageError
from core.model import Model
from core.ports import AggregateRow, PredictionStore
from tests.helpers import SteppingClock, app_client, serving_service
from tests.http.support import assert_documented

KEY = "stats-Key_0123456789"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


MakeStatsClient = Callable[..., TestClient]


@pytest.fixture(params=["memory", "sqlite"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], PredictionStore]:
    def make() -> PredictionStore:
        if request.param == "memory":
            return MemoryStore()
        return SqliteStore(str(tmp_path / f"stats-{len(list(tmp_path.iterdir()))}.db"))

    return make


@pytest.fixture
def make_stats_client(model: Model, tmp_path: Path) -> Iterator[MakeStatsClient]:
    clients: list[TestClient] = []

    def make(store: PredictionStore, **settings: Any) -> TestClient:
        # Five hours per prediction: twenty of them spread over several UTC days.
        service = serving_service(model, store, SteppingClock(timedelta(hours=5), START))
        client = app_client(service, **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def passengers() -> list[dict[str, Any]]:
    """Twenty varied passengers: both sexes and classes, missing ages, a category unseen in training."""
    people = []
    for k in range(20):
        people.append({
            "Pclass": 1 + k % 3,
            "Sex": "female" if k % 2 else "male",
            "Age": None if k % 7 == 3 else 2.0 + 3.5 * k,
            "SibSp": k % 4,
            "Parch": k % 3,
            "Fare": 7.25 + 11.0 * k,
            "Cabin": None if k % 3 else "C85",
            "Embarked": ["S", "C", "Q", "X"][k % 4],
        })
    return people


# id -> true class; id 5 is first recorded as 1, then replaced by 0.
OUTCOMES = {0: 0, 1: 1, 2: 0, 3: 1, 5: 1, 6: 0, 8: 1, 9: 1, 11: 0, 12: 1, 15: 0, 18: 1}
REPLACED = {5: 0}


def seed(client: TestClient, headers: dict[str, str] | None = None) -> dict[int, dict[str, Any]]:
    """Twenty predictions and twelve outcomes through the API; returns the final records by id."""
    records = {}
    for k, observation in enumerate(passengers()):
        response = client.post("/predict", json={"id": k, "observation": observation}, headers=headers)
        assert response.status_code == 200, response.text
        records[k] = response.json()
    for prediction_id, true_class in [*OUTCOMES.items(), *REPLACED.items()]:
        response = client.post("/update", json={"id": prediction_id, "true_class": true_class}, headers=headers)
        assert response.status_code == 200, response.text
        records[prediction_id] = response.json()
    return records


def by_hand(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures /stats must show, computed from the records with nothing but arithmetic."""
    labeled = [r for r in records if r["true_class"] is not None]
    cm = {"tn": 0, "fp": 0, "fn": 0, "tp": 0}
    for r in labeled:
        cm[{(0, False): "tn", (0, True): "fp", (1, False): "fn", (1, True): "tp"}[(r["true_class"],
                                                                                 r["predicted_class"])]] += 1
    n = len(labeled)
    precision = cm["tp"] / (cm["tp"] + cm["fp"])
    recall = cm["tp"] / (cm["tp"] + cm["fn"])
    positives = [r["proba"] for r in labeled if r["true_class"] == 1]
    negatives = [r["proba"] for r in labeled if r["true_class"] == 0]

    def roc_bin(p: float) -> int:
        return min(int(p * 1000), 999)

    pairs = [1.0 if roc_bin(p) > roc_bin(q) else 0.5 if roc_bin(p) == roc_bin(q) else 0.0
             for p in positives for q in negatives]
    calibration_counts = [0] * 10
    for r in labeled:
        calibration_counts[min(int(r["proba"] * 10), 9)] += 1
    return {
        "predictions": len(records),
        "predicted_positive": sum(r["predicted_class"] for r in records),
        "mean_proba_served": sum(r["proba"] for r in records) / len(records),
        "labeled": n,
        "confusion_matrix": cm,
        "accuracy": (cm["tp"] + cm["tn"]) / n,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall),
        "roc_auc": sum(pairs) / len(pairs),
        "brier_score": sum((r["proba"] - r["true_class"]) ** 2 for r in labeled) / n,
        "log_loss": -sum(math.log(r["proba"] if r["true_class"] else 1 - r["proba"]) for r in labeled) / n,
        "base_rate": sum(r["true_class"] for r in labeled) / n,
        "mean_proba": sum(r["proba"] for r in labeled) / n,
        "calibration_counts": calibration_counts,
    }


def daily_by_hand(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    days: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        days.setdefault(r["created_at"][:10], []).append(r)
    series = []
    for day in sorted(days):
        labeled = [r for r in days[day] if r["true_class"] is not None]
        correct = sum(r["true_class"] == int(r["predicted_class"]) for r in labeled)
        series.append({"day": day, "predictions": len(days[day]), "outcomes": len(labeled),
                       "accuracy": correct / len(labeled) if labeled else None})
    return series


def test_stats_equal_a_recomputation_from_the_stored_records(
    make_stats_client: MakeStatsClient, new_store: Callable[[], PredictionStore]
) -> None:
    client = make_stats_client(new_store())
    records = list(seed(client).values())
    expected = by_hand(records)

    response = client.get("/stats")

    assert response.status_code == 200
    assert_documented(client, "GET", "/stats", response)
    stats = response.json()
    version = client.get("/model").json()["model_version"]
    assert stats["model_version"] == version and stats["since"] is None and stats["until"] is None
    [served] = stats["versions"]
    assert served["model_version"] == version and served["serving"] is True
    assert served["predictions"] == expected["predictions"] == 20
    assert served["predicted_positive"] == expected["predicted_positive"]
    assert served["mean_proba_served"] == pytest.approx(expected["mean_proba_served"])
    outcomes = served["outcomes"]
    assert outcomes["labeled"] == expected["labeled"] == 12
    assert outcomes["confusion_matrix"] == expected["confusion_matrix"]
    for figure in ("accuracy", "precision", "recall", "f1", "roc_auc", "brier_score", "log_loss", "base_rate",
                   "mean_proba"):
        assert outcomes[figure] == pytest.approx(expected[figure], rel=1e-9), figure
    assert [b["count"] for b in outcomes["calibration"]] == expected["calibration_counts"]
    assert served["daily"] == daily_by_hand(records)
    assert len({r["created_at"][:10] for r in records}) >= 4  # the seed spans several days


def test_the_seed_has_both_classes_predicted_and_observed(make_stats_client: MakeStatsClient) -> None:
    # Guards the test above: with one class only, precision or AUC would be null and prove little.
    records = list(seed(make_stats_client(MemoryStore())).values())
    expected = by_hand(records)
    assert all(expected["confusion_matrix"][cell] > 0 for cell in ("tn", "tp"))
    assert 0 < expected["predicted_positive"] < 20
    assert 0 < expected["roc_auc"] < 1


def test_the_roc_curve_runs_from_the_origin_to_the_corner(make_stats_client: MakeStatsClient) -> None:
    client = make_stats_client(MemoryStore())
    seed(client)
    curve = client.get("/stats").json()["versions"][0]["roc_curve"]

    assert curve[0] == {"threshold": 1.0, "fpr": 0.0, "tpr": 0.0}
    assert curve[-1]["fpr"] == 1.0 and curve[-1]["tpr"] == 1.0
    assert [p["threshold"] for p in curve] == sorted((p["threshold"] for p in curve), reverse=True)


def test_drift_covers_every_feature_and_flags_the_unseen_category(make_stats_client: MakeStatsClient) -> None:
    client = make_stats_client(MemoryStore())
    seed(client)
    drift = {f["feature"]: f for f in client.get("/stats").json()["versions"][0]["drift"]}
    card = client.get("/model").json()

    assert list(drift) == [f["name"] for f in card["features"]]
    embarked = drift["Embarked"]
    assert embarked["unseen_share"] == pytest.approx(5 / 20)  # "X" on every fourth passenger
    assert embarked["flagged"] and any("unseen" in flag for flag in embarked["flags"])
    assert drift["Age"]["null_share"]["served"] == pytest.approx(3 / 20)


def test_since_and_until_keep_only_those_days(make_stats_client: MakeStatsClient) -> None:
    client = make_stats_client(MemoryStore())
    records = list(seed(client).values())
    days = sorted({r["created_at"][:10] for r in records})
    since, until = days[1], days[-2]

    response = client.get("/stats", params={"since": since, "until": until})

    assert response.status_code == 200
    assert_documented(client, "GET", "/stats", response)
    stats = response.json()
    assert (stats["since"], stats["until"]) == (since, until)
    kept = [r for r in records if since <= r["created_at"][:10] <= until]
    [served] = stats["versions"]
    assert served["predictions"] == len(kept) < len(records)
    assert served["outcomes"]["labeled"] == by_hand(kept)["labeled"]
    assert served["outcomes"]["confusion_matrix"] == by_hand(kept)["confusion_matrix"]
    assert [d["day"] for d in served["daily"]] == days[1:-1]


def test_a_single_day_and_an_empty_model_version(make_stats_client: MakeStatsClient) -> None:
    client = make_stats_client(MemoryStore())
    records = list(seed(client).values())
    first = min(r["created_at"][:10] for r in records)

    one_day = client.get("/stats", params={"since": first, "until": first}).json()
    every_version = client.get("/stats", params={"model_version": ""}).json()

    assert one_day["versions"][0]["predictions"] == sum(r["created_at"][:10] == first for r in records)
    assert every_version["versions"][0]["predictions"] == 20


def test_model_version_keeps_only_that_version(make_stats_client: MakeStatsClient) -> None:
    store = MemoryStore()
    client = make_stats_client(store)
    seed(client)
    version = client.get("/model").json()["model_version"]
    # A version served before this one, as the store holds it (no drift counters of its own).
    store.replace_aggregates([*store.aggregates(), AggregateRow("older-model", "2026-02-01", {"n": 3, "lab": 1,
                                                                                              "cm_11": 1})])

    both = client.get("/stats").json()["versions"]
    only_old = client.get("/stats", params={"model_version": "older-model"})
    unknown = client.get("/stats", params={"model_version": "f" * 64}).json()

    assert [v["model_version"] for v in both] == [version, "older-model"]  # the served version first
    assert both[1]["serving"] is False and both[1]["drift"] == []
    assert only_old.status_code == 200
    assert_documented(client, "GET", "/stats", only_old)
    [old] = only_old.json()["versions"]
    assert (old["predictions"], old["outcomes"]["accuracy"]) == (3, 1.0)
    assert unknown["versions"] == []


def test_an_empty_store_has_no_versions_yet(make_stats_client: MakeStatsClient) -> None:
    client = make_stats_client(MemoryStore())
    response = client.get("/stats")

    assert response.status_code == 200
    assert response.json()["versions"] == []
    assert_documented(client, "GET", "/stats", response)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": ""}, "since"),
        ({"until": " 2026-03-01"}, "until"),
        ({"since": "2026-3-1"}, "since"),
        ({"since": "20260301"}, "since"),
        ({"until": "2026-02-30"}, "until"),
        ({"until": "2026-W09-1"}, "until"),
        ({"since": "yesterday"}, "since"),
        ({"since": "２０２６-03-01"}, "since"),
        ({"since": "2026-03-01T00:00:00"}, "since"),
        ({"since": "2026-03-05", "until": "2026-03-01"}, "since"),
        ({"model_version": "v" * 129}, "model_version"),
        ({"model_version": "tab\there"}, "model_version"),
        ({"model_version": "caf\u00e9"}, "model_version"),
    ],
)
def test_bad_filters_are_422_naming_the_parameter(
    make_stats_client: MakeStatsClient, params: dict[str, str], field: str
) -> None:
    client = make_stats_client(MemoryStore())
    response = client.get("/stats", params=params)

    assert response.status_code == 422
    assert response.json()["type"].endswith("/validation")
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert_documented(client, "GET", "/stats", response)


def test_both_bad_dates_are_reported_at_once(make_stats_client: MakeStatsClient) -> None:
    response = make_stats_client(MemoryStore()).get("/stats", params={"since": "x", "until": "y"})
    assert [e["field"] for e in response.json()["errors"]] == ["since", "until"]


def test_stats_need_the_api_key_when_one_is_set(make_stats_client: MakeStatsClient) -> None:
    client = make_stats_client(MemoryStore(), api_key=KEY)
    seed(client, headers={"X-API-Key": KEY})

    refused = client.get("/stats")
    wrong = client.get("/stats", headers={"X-API-Key": "not-" + KEY})
    bearer = client.get("/stats", headers={"Authorization": f"Bearer {KEY}"})
    header = client.get("/stats", headers={"X-API-Key": KEY})

    assert refused.status_code == wrong.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert bearer.status_code == header.status_code == 200
    assert header.json()["versions"][0]["predictions"] == 20
    for response in (refused, wrong, header):
        assert_documented(client, "GET", "/stats", response)
    operation = client.get("/openapi.json").json()["paths"]["/stats"]["get"]
    assert operation["security"] and "401" in operation["responses"]


def test_the_key_is_checked_before_the_parameters(make_stats_client: MakeStatsClient) -> None:
    client = make_stats_client(MemoryStore(), api_key=KEY)
    assert client.get("/stats", params={"since": "nonsense"}).status_code == 401


class UnreachableStore(MemoryStore):
    def aggregates(self, *args: Any, **kwargs: Any) -> list[AggregateRow]:
        raise StorageError("cannot reach table 'secret-table'")


def test_an_unreachable_store_is_503_and_hides_the_cause(make_stats_client: MakeStatsClient) -> None:
    client = make_stats_client(UnreachableStore())
    response = client.get("/stats")

    assert response.status_code == 503
    assert "secret-table" not in response.text
    assert_documented(client, "GET", "/stats", response)


def test_the_document_describes_every_field_of_the_answer(make_stats_client: MakeStatsClient) -> None:
    # The schemas forbid fields they do not name: a field added to the answer without its
    # documentation fails assert_documented. This checks the converse: nothing documented is missing.
    client = make_stats_client(MemoryStore())
    seed(client)
    stats = client.get("/stats").json()
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    version = stats["versions"][0]

    assert set(schemas["Stats"]["properties"]) == set(stats)
    assert set(schemas["VersionStats"]["properties"]) == set(version)
    assert set(schemas["OutcomeStats"]["properties"]) == set(version["outcomes"])
    assert set(schemas["FeatureDrift"]["properties"]) == set(version["drift"][0])
