"""A champion and challengers fitted on different features, served together (SHADOW_MODEL_DIRS):
the answers are the champion's, every challenger's score is stored with the record, and
/stats' comparison matches scikit-learn, SciPy and DeLong's test computed on the same records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import chi2
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from starlette.testclient import TestClient

from adapters.bootstrap import build_service, create_app
from adapters.settings import ConfigurationError, Settings
from core import predict
from core.model import load_model
from tests.core.fitting import fit_artifact, make_table
from tests.core.test_comparison import delong

Z95 = 1.959963984540054


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The champion on every feature; a challenger on two of them; one that needs a feature
    (Cabin) no observation has."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    base = tmp_path_factory.mktemp("challengers")
    table = make_table(n=400, seed=3)
    fit_artifact(base / "champion", table=table)
    few = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["Sex", "Pclass"])])
    fit_artifact(base / "challenger", make_pipeline(few, LogisticRegression()), table=table[["Sex", "Pclass", "y"]])
    with_cabin = table.assign(Cabin=np.where(table["y"] == 1, "B", "C"))
    fit_artifact(base / "needs-cabin", table=with_cabin)
    return {name: base / name for name in ("champion", "challenger", "needs-cabin")}


def served(artifacts: dict[str, Path], tmp_path: Path) -> TestClient:
    settings = Settings(store_url=f"sqlite:///{tmp_path / 'p.db'}", model_dir=artifacts["champion"],
                        shadow_model_dirs=(artifacts["challenger"], artifacts["needs-cabin"]))
    return TestClient(create_app(settings), raise_server_exceptions=False)


def observations(n: int = 300) -> tuple[list[dict[str, Any]], list[int]]:
    table = make_table(n=n, seed=11)
    rows = table.drop(columns=["y"]).astype(object).where(table.notna(), None).to_dict("records")
    return rows, [int(v) for v in table["y"]]


def test_answers_are_the_champions_and_every_challengers_score_is_stored(
    artifacts: dict[str, Path], tmp_path: Path
) -> None:
    rows, _ = observations(5)
    champion = load_model(artifacts["champion"])
    with served(artifacts, tmp_path) as client:
        plain = TestClient(create_app(Settings(store_url="memory://", model_dir=artifacts["champion"])))
        answers = [client.post("/predict", json={"id": k, "observation": o}) for k, o in enumerate(rows)]
        alone = [plain.post("/predict", json={"id": k, "observation": o}) for k, o in enumerate(rows)]
    service = build_service(Settings(store_url=f"sqlite:///{tmp_path / 'p.db'}", model_dir=artifacts["champion"]))

    for answer, reference, row in zip(answers, alone, rows):
        assert answer.status_code == reference.status_code == 200
        body, expected = answer.json(), reference.json()
        assert body.keys() == expected.keys()  # the same shape
        assert body["proba"] == expected["proba"] == predict(row, champion).proba
    stored = service.store.get(0)
    challenger = load_model(artifacts["challenger"])
    cabin = load_model(artifacts["needs-cabin"])
    assert [s.model_version for s in stored.shadows] == [challenger.version, cabin.version]
    assert stored.shadows[0].proba == predict(rows[0], challenger).proba
    assert stored.shadows[1].proba is None and "Cabin" in (stored.shadows[1].problem or "")


def test_stats_compare_the_challenger_with_the_champion_as_scikit_learn_and_delong_do(
    artifacts: dict[str, Path], tmp_path: Path
) -> None:
    rows, y = observations()
    champion, challenger = load_model(artifacts["champion"]), load_model(artifacts["challenger"])
    with served(artifacts, tmp_path) as client:
        for start in range(0, len(rows), 100):
            batch = [{"id": k, "observation": rows[k]} for k in range(start, start + 100)]
            assert client.post("/predict", json={"observations": batch}).status_code == 200
        for k, outcome in enumerate(y):
            assert client.post("/update", json={"id": k, "true_class": 1 - outcome}).status_code == 200
            assert client.post("/update", json={"id": k, "true_class": outcome}).status_code == 200  # replaced
        stats = client.get("/stats").json()

    a = np.array([predict(r, champion).proba for r in rows])
    b = np.array([predict(r, challenger).proba for r in rows])
    labels = np.array(y)
    (figures,) = [c for c in stats["comparison"] if c["challenger"] == challenger.version]
    assert figures["champion"] == champion.version
    assert (figures["records"], figures["positives"]) == (len(y), int(labels.sum()))
    difference, se, p_value = delong(labels, a, b)
    auc = figures["roc_auc"]
    # The counters bin scores at 1/1000 (AUC) and 1/50 (covariance): tolerances of core.comparison's tests.
    assert auc["champion"] == pytest.approx(roc_auc_score(labels, a), abs=2e-3)
    assert auc["challenger"] == pytest.approx(roc_auc_score(labels, b), abs=2e-3)
    assert auc["difference"] == pytest.approx(difference, abs=2e-3)
    assert auc["ci95"] == pytest.approx([difference - Z95 * se, difference + Z95 * se], abs=5e-3)
    assert auc["p_value"] == pytest.approx(p_value, abs=0.02)
    right_a, right_b = (a >= 0.5) == labels, (b >= 0.5) == labels
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    accuracy = figures["accuracy"]
    assert accuracy["champion"] == pytest.approx(accuracy_score(labels, a >= 0.5), abs=1e-12)
    assert accuracy["challenger"] == pytest.approx(accuracy_score(labels, b >= 0.5), abs=1e-12)
    assert (accuracy["only_champion_right"], accuracy["only_challenger_right"]) == (only_a, only_b)
    assert accuracy["mcnemar_p_value"] == pytest.approx(
        chi2.sf((abs(only_a - only_b) - 1) ** 2 / (only_a + only_b), 1), abs=1e-9
    )
    for name, metric in (("brier_score", brier_score_loss), ("log_loss", log_loss)):
        assert figures[name]["champion"] == pytest.approx(metric(labels, a), abs=1e-9)
        assert figures[name]["challenger"] == pytest.approx(metric(labels, b), abs=1e-9)
    assert figures["challenger_better"] is bool(p_value < 0.05 and difference > 0)

    versions = {(v["model_version"], v["role"]): v for v in stats["versions"]}
    as_challenger = versions[(challenger.version, "challenger")]
    assert as_challenger["serving"] is False and as_challenger["shadowing"] == [champion.version]
    assert as_challenger["predictions"] == len(rows) and as_challenger["outcomes"]["labeled"] == len(y)
    assert as_challenger["outcomes"]["roc_auc"] == pytest.approx(roc_auc_score(labels, b), abs=2e-3)
    assert versions[(champion.version, "champion")]["outcomes"]["roc_auc"] == pytest.approx(
        roc_auc_score(labels, a), abs=2e-3
    )
    never_scored = versions[(load_model(artifacts["needs-cabin"]).version, "challenger")]
    assert never_scored["predictions"] == 0


def test_a_challenger_that_cannot_be_loaded_stops_startup_naming_it(artifacts: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigurationError, match="^SHADOW_MODEL_DIRS=") as raised:
        build_service(Settings(store_url="memory://", model_dir=artifacts["champion"],
                               shadow_model_dirs=(artifacts["challenger"], missing)))
    assert str(missing) in str(raised.value)
    with pytest.raises(ConfigurationError, match="already the champion"):
        build_service(Settings(store_url="memory://", model_dir=artifacts["champion"],
                               shadow_model_dirs=(artifacts["champion"],)))


def test_shadow_model_dirs_is_read_as_a_comma_separated_list_of_at_most_three() -> None:
    assert Settings.from_env({"SHADOW_MODEL_DIRS": "a, b,,c"}).shadow_model_dirs == (Path("a"), Path("b"), Path("c"))
    with pytest.raises(ConfigurationError, match="at most 3"):
        Settings.from_env({"SHADOW_MODEL_DIRS": "a,b,c,d"})


def test_after_promotion_the_history_of_both_and_their_comparison_stay(artifacts: dict[str, Path]) -> None:
    from datetime import UTC, datetime

    from adapters.storage import MemoryStore
    from core.service import PredictionService

    champion, challenger = load_model(artifacts["champion"]), load_model(artifacts["challenger"])
    store = MemoryStore()
    rows, y = observations(60)
    before = PredictionService(champion, store, lambda: datetime.now(UTC), challengers=[challenger])
    for k, (row, outcome) in enumerate(zip(rows, y)):
        before.predict(k, row)
        before.record_outcome(k, outcome)
    compared = before.stats()["comparison"]

    # Redeployed with the challenger as MODEL_DIR:
    promoted = PredictionService(challenger, store, lambda: datetime.now(UTC))
    promoted.predict("after", rows[0])
    stats = promoted.stats()
    old_champion_only = promoted.stats(model_version=champion.version)

    assert stats["comparison"] == compared  # kept, although nothing is compared any more
    roles = [(v["model_version"], v["role"], v["serving"], v["predictions"]) for v in stats["versions"]]
    assert roles == [(challenger.version, "champion", True, 1), (champion.version, "champion", False, 60),
                     (challenger.version, "challenger", False, 60)]
    assert [(v["model_version"], v["role"]) for v in old_champion_only["versions"]] == [
        (champion.version, "champion"), (challenger.version, "challenger")]


@pytest.mark.usefixtures("aws_credentials")
def test_every_store_keeps_the_challengers_counters_as_the_memory_store_does(
    artifacts: dict[str, Path], tmp_path: Path, postgres_url: str
) -> None:
    """The same history on each backend gives the same /stats, comparison included."""
    from datetime import UTC, datetime

    from moto import mock_aws

    from adapters.storage import DynamoStore, MemoryStore, SqliteStore
    from adapters.storage.postgres import PostgresStore
    from core.service import PredictionService
    from tests.storage.records import REGION, fresh_table_name

    champion, challenger = load_model(artifacts["champion"]), load_model(artifacts["challenger"])
    rows, y = observations(80)
    moment = datetime(2026, 1, 5, tzinfo=UTC)

    def history(store: Any) -> dict[str, Any]:
        service = PredictionService(champion, store, lambda: moment, challengers=[challenger])
        service.predict_batch([(k, row) for k, row in enumerate(rows[:40])])
        for k in range(40, 80):
            service.predict(k, rows[k])
        for k, outcome in enumerate(y):
            service.record_outcome(k, 1 - outcome)
            service.record_outcome(k, outcome)
        return service.stats()

    expected = history(MemoryStore())
    with mock_aws():
        dynamo = DynamoStore(fresh_table_name(), region=REGION)
        dynamo.create_table()
        stores = {"sqlite": SqliteStore(tmp_path / "p.db"), "postgres": PostgresStore(postgres_url), "dynamodb": dynamo}
        for name, store in stores.items():
            assert differences(history(store), expected) == [], name
            if hasattr(store, "close"):
                store.close()


def differences(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where two /stats answers differ, floats compared to 1e-9 (sums kept by other stores)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if actual.keys() != expected.keys():
            return [f"{path}: keys {sorted(actual)} != {sorted(expected)}"]
        return [d for k in expected for d in differences(actual[k], expected[k], f"{path}.{k}")]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(actual) != len(expected):
            return [f"{path}: {len(actual)} items != {len(expected)}"]
        return [d for i, (a, e) in enumerate(zip(actual, expected)) for d in differences(a, e, f"{path}[{i}]")]
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        return [] if actual == pytest.approx(expected, rel=1e-9, abs=1e-12) else [f"{path}: {actual} != {expected}"]
    return [] if actual == expected else [f"{path}: {actual!r} != {expected!r}"]
