"""A loaded, verified model artifact, and how it turns validated rows into probabilities.

An artifact is a directory: `model.joblib` (the fitted pipeline, the source of truth),
`manifest.json` (schema, threshold, metrics, versions, hashes) and, when the pipeline could be
compiled and was checked to agree with scikit-learn, `fast.json` (see core.forms). Serving uses
the fast form when present, so scikit-learn is only imported when a model needs it.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from core.errors import ModelError
from core.forms import Form, load_form_file
from core.schema import Schema

MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
FAST_FILE = "fast.json"
# Where a large fast form's compiled code is kept between loads (see core.forms.CodeCache).
CODE_CACHE = "__pycache__"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "artifacts" / "titanic"


class Scorer(Protocol):
    def proba(self, values: Sequence[Any]) -> float: ...

    def proba_many(self, rows: Sequence[Sequence[Any]]) -> list[float]: ...


class FastScorer:
    """The compiled fast form (pure Python; see core.forms)."""

    engine = "fast"

    def __init__(self, form: Form) -> None:
        self.proba = form.proba

    def proba_many(self, rows: Sequence[Sequence[Any]]) -> list[float]:
        proba = self.proba
        return [proba(row) for row in rows]


def as_fitted(pipeline: Any, frame: Any) -> Any:
    """`frame` as `pipeline` was fitted: itself, or its values for a pipeline fitted on an array
    (given a DataFrame, scikit-learn would warn that it was fitted without feature names)."""
    return frame if getattr(pipeline, "feature_names_in_", None) is not None else frame.to_numpy()


class SklearnScorer:
    """The fitted pipeline itself, fed a DataFrame with the training dtypes (see `as_fitted`)."""

    engine = "sklearn"

    def __init__(self, pipeline: Any, schema: Schema, positive_index: int) -> None:
        self.pipeline = pipeline
        self.schema = schema
        self.positive_index = positive_index
        # The service reports an unseen category in the prediction's warnings; a OneHotEncoder
        # with `drop` would also warn on stderr for each one. Set once for the process:
        # catch_warnings around each call is not safe in the thread pool that runs this.
        warnings.filterwarnings("ignore", message="Found unknown categories", category=UserWarning)

    def frame(self, rows: Sequence[Sequence[Any]]) -> Any:
        import numpy as np
        import pandas as pd

        columns = {}
        for k, feature in enumerate(self.schema.features):
            column = [row[k] for row in rows]
            if feature.kind == "category":
                columns[feature.name] = pd.Series([np.nan if v is None else v for v in column], dtype=object)
            else:
                columns[feature.name] = pd.Series([np.nan if v is None else v for v in column], dtype="float64")
        return as_fitted(self.pipeline, pd.DataFrame(columns))

    def proba_many(self, rows: Sequence[Sequence[Any]]) -> list[float]:
        if not rows:
            return []
        probas = self.pipeline.predict_proba(self.frame(rows))[:, self.positive_index]
        return [float(p) for p in probas]

    def proba(self, values: Sequence[Any]) -> float:
        return self.proba_many([values])[0]


@dataclass(frozen=True)
class Model:
    """A verified artifact ready to score: schema, threshold and the scorer that serves it."""

    path: Path
    manifest: dict[str, Any]
    schema: Schema
    threshold: float
    version: str
    scorer: Scorer

    @property
    def engine(self) -> str:
        return str(getattr(self.scorer, "engine", "unknown"))

    @property
    def engine_reason(self) -> str:
        """Which engine serves the model and why (for scikit-learn: what kept the fast form out)."""
        if self.engine == "sklearn" and self.manifest.get("fast_sha256"):
            return "scikit-learn: chosen when loading (engine='sklearn'); the artifact also has a fast form"
        return str(self.manifest.get("fast_reason", self.engine))

    def card(self) -> dict[str, Any]:
        """What `/model` shows: the manifest plus how this process serves it."""
        return {**self.manifest, "model_version": self.version, "engine": self.engine,
                "engine_reason": self.engine_reason}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON without its own `manifest_sha256` field."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path} is not a model artifact: {MANIFEST_FILE} is missing") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read {manifest_path}: {e}") from e
    if manifest.get("manifest_sha256") != manifest_digest(manifest):
        raise ModelError(f"{manifest_path} was modified after the artifact was built (its checksum does not match)")
    return manifest


def _verified_file(path: Path, expected: str | None, what: str) -> Path:
    if not path.is_file():
        raise ModelError(f"{what} {path} is missing")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(
            f"{what} {path} does not match its manifest (sha256 {actual[:12]}…, expected {str(expected)[:12]}…); "
            "refusing to load it"
        )
    return path


def load_pipeline(path: Path, manifest: dict[str, Any]) -> Any:
    """Unpickle the fitted pipeline after checking its hash and the scikit-learn version."""
    model_file = _verified_file(path / MODEL_FILE, manifest.get("model_sha256"), "model file")
    import joblib
    import sklearn
    from sklearn.exceptions import InconsistentVersionWarning

    recorded = manifest.get("versions", {}).get("scikit-learn")
    if recorded != sklearn.__version__:
        raise ModelError(
            f"{path} was fitted with scikit-learn {recorded}, but {sklearn.__version__} is installed; "
            f"install scikit-learn=={recorded} or rebuild the artifact"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", InconsistentVersionWarning)
            return joblib.load(model_file)
    except InconsistentVersionWarning as w:
        raise ModelError(
            f"{path}: pickled by scikit-learn {w.original_sklearn_version}, loaded by {w.current_sklearn_version}"
        ) from w


def load_model(path: str | Path = DEFAULT_MODEL_DIR, engine: str = "auto") -> Model:
    """Load and verify the artifact in directory `path`.

    Checks the manifest's own checksum and the sha256 of every file it names before use (a
    pickle runs code when loaded). `engine` is "auto" (the fast form when the artifact has one),
    "fast" or "sklearn". Raises ModelError with a clear message when anything does not match.
    """
    path = Path(path)
    manifest = read_manifest(path)
    schema = Schema.from_list(manifest["features"])
    version = str(manifest["model_sha256"])
    has_fast = bool(manifest.get("fast_sha256"))
    if engine not in ("auto", "fast", "sklearn"):
        raise ValueError(f"engine must be 'auto', 'fast' or 'sklearn', not {engine!r}")
    if engine == "fast" and not has_fast:
        raise ModelError(f"{path} has no fast form: {manifest.get('fast_reason', 'not built')}")
    scorer: Scorer
    if has_fast and engine != "sklearn":
        # The fast form is derived from model.joblib: both must be the files the manifest names.
        _verified_file(path / MODEL_FILE, version, "model file")
        fast_file = _verified_file(path / FAST_FILE, manifest["fast_sha256"], "fast form")
        try:
            scorer = FastScorer(load_form_file(fast_file, manifest["fast_sha256"], cache_dir=path / CODE_CACHE))
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise ModelError(f"{fast_file} cannot be read by this version ({e}); rebuild the artifact") from e
    else:
        pipeline = load_pipeline(path, manifest)
        scorer = SklearnScorer(pipeline, schema, int(manifest["positive_index"]))
    return Model(
        path=path,
        manifest=manifest,
        schema=schema,
        threshold=float(manifest["threshold"]),
        version=version,
        scorer=scorer,
    )


@cache
def default_model() -> Model:
    """The shipped model, loaded once per process."""
    return load_model(DEFAULT_MODEL_DIR)
