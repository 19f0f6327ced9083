"""Building a model artifact: schema inference, manifest, the checked fast form, the files.

Build-time only: imports pandas, numpy and scikit-learn, which serving may not have.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from core.build.compile import NotCompilable, compile_pipeline
from core.build.compile.features import plain
from core.errors import ModelError
from core.forms import load_form
from core.model import FAST_FILE, MANIFEST_FILE, MODEL_FILE, as_fitted, manifest_digest, sha256_file
from core.schema import Feature, Schema

# The fast form must reproduce scikit-learn's probabilities this closely on every check row.
AGREEMENT_TOLERANCE = 1e-9
FORMAT_VERSION = 1


def data_fingerprint(frame: Any) -> dict[str, Any]:
    """Identifies the training table: its shape, columns and a hash of its values."""
    import pandas as pd

    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return {
        "rows": int(len(frame)),
        "columns": [str(c) for c in frame.columns],
        "sha256": hashlib.sha256(row_hashes.tobytes()).hexdigest(),
    }


def infer_schema(X: Any, pipeline: Any, positive_index: int) -> Schema:
    """Each column's kind and dtype, its training range or categories, and whether it may be null.

    A feature is nullable when the fitted pipeline scores a row with it missing (the pipeline
    imputes it) to a finite probability.
    """
    import numpy as np
    import pandas as pd

    features = []
    for name in X.columns:
        column = X[name]
        null_share = float(column.isna().mean())
        probe = X.head(1).copy()
        probe[name] = np.nan if pd.api.types.is_numeric_dtype(column) else None
        nullable = _scores_finitely(pipeline, probe, positive_index)
        stats: dict[str, Any] = {"null_share": null_share}
        present = column.dropna()
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            shares = present.astype(str).value_counts(normalize=True).sort_index()
            stats["category_shares"] = {str(k): float(v) for k, v in shares.items()}
            features.append(
                Feature(
                    name=str(name),
                    kind="category",
                    dtype=str(column.dtype),
                    nullable=nullable,
                    categories=tuple(str(c) for c in shares.index),
                    stats=stats,
                )
            )
            continue
        kind = "integer" if pd.api.types.is_integer_dtype(column) else "number"
        seen_min = float(present.min()) if len(present) else None
        seen_max = float(present.max()) if len(present) else None
        stats.update(_quantile_bins(present.to_numpy(dtype=float)))
        features.append(
            Feature(
                name=str(name),
                kind=kind,
                dtype=str(column.dtype),
                nullable=nullable,
                # A column never negative in training is a count or an amount: refuse negatives.
                minimum=0.0 if seen_min is not None and seen_min >= 0 else None,
                seen_min=seen_min,
                seen_max=seen_max,
                stats=stats,
            )
        )
    return Schema(tuple(features))


def _quantile_bins(values: Any) -> dict[str, Any]:
    """Decile edges of the training values and the share of values in each bin, for drift (PSI).

    Bins are those of core.quality.numeric_bin: value v falls in bisect_right(edges, v).
    """
    import numpy as np

    if not len(values):
        return {"bin_edges": [], "bin_shares": []}
    edges = sorted({float(q) for q in np.quantile(values, np.linspace(0.1, 0.9, 9))})
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return {"bin_edges": edges, "bin_shares": [float(c) for c in counts / len(values)]}


def _scores_finitely(pipeline: Any, frame: Any, positive_index: int) -> bool:
    try:
        proba = pipeline.predict_proba(as_fitted(pipeline, frame))[:, positive_index]
    except Exception:  # noqa: BLE001 - any failure means "this pipeline cannot take a null here"
        return False
    return bool(math.isfinite(float(proba[0])))


def check_rows(X: Any, schema: Schema) -> tuple[list[list[Any]], dict[str, int]]:
    """Training rows plus, for the first 50 of them, each nullable feature nulled, each category
    replaced by one never seen and each non-integer number by one close to it that training did
    not have; and how many rows of each kind there are."""
    import pandas as pd

    rows = [[None if pd.isna(v) else plain(v) for v in row] for row in X.itertuples(index=False)]
    nulled: list[list[Any]] = []
    unseen: list[list[Any]] = []
    moved: list[list[Any]] = []
    for k, feature in enumerate(schema.features):
        for row in rows[:50]:
            if feature.nullable:
                nulled.append(row[:k] + [None] + row[k + 1 :])
            if feature.kind == "category":
                unseen.append(row[:k] + ["never seen in training"] + row[k + 1 :])
            elif feature.kind == "number" and isinstance(value := row[k], (int, float)):
                moved.append(row[:k] + [value * 1.001 + 0.001] + row[k + 1 :])
    kinds = {
        "training rows": len(rows),
        "with a feature nulled": len(nulled),
        "with an unseen category": len(unseen),
        "with a number training did not have": len(moved),
    }
    return rows + nulled + unseen + moved, kinds


def build_fast_form(
    pipeline: Any, X: Any, schema: Schema, positive_index: int, threshold: float
) -> tuple[dict[str, Any] | None, str]:
    """Compile the pipeline and check it against scikit-learn; (None, why) when it cannot be used.

    The reason is what core.build.package, core.build.train and /model show: the engine, and for
    scikit-learn the step that prevented the fast form. A compiler or a check that fails in
    any other way also means no fast form, with the error as the reason: the artifact is still
    built, served by scikit-learn.
    """
    try:
        return _checked_fast_form(pipeline, X, schema, positive_index, threshold)
    except NotCompilable as e:
        return None, f"scikit-learn: no fast form, {e}"
    except Exception as e:  # noqa: BLE001 - any failure here only costs the fast form
        return None, f"scikit-learn: no fast form, building it failed ({type(e).__name__}: {e})"


def _checked_fast_form(
    pipeline: Any, X: Any, schema: Schema, positive_index: int, threshold: float
) -> tuple[dict[str, Any] | None, str]:
    from core.model import SklearnScorer

    data = compile_pipeline(pipeline, X, schema)
    if positive_index != 1:
        return None, "scikit-learn: no fast form, the positive class is not the model's second class"
    form = load_form(json.loads(json.dumps(data)))
    rows, kinds = check_rows(X, schema)
    reference = SklearnScorer(pipeline, schema, positive_index).proba_many(rows)
    worst = 0.0
    for row, expected in zip(rows, reference):
        got = form.proba(row)
        difference = abs(got - expected) if math.isfinite(got) else math.inf
        worst = max(worst, difference)
        near_threshold = abs(expected - threshold) <= AGREEMENT_TOLERANCE
        if difference > AGREEMENT_TOLERANCE or ((got >= threshold) != (expected >= threshold) and not near_threshold):
            return None, (
                f"scikit-learn: no fast form, the compiled {data['estimator']} disagrees with scikit-learn"
                f" (difference {difference:.2e}) on row {row!r}"
            )
    data["checked_rows"] = kinds
    data["max_abs_difference"] = worst
    detail = ", ".join(f"{n:,} {kind}" for kind, n in kinds.items())
    return data, (
        f"fast ({data['family']} form of {data['estimator']}): agrees with scikit-learn within"
        f" {AGREEMENT_TOLERANCE:g} on {len(rows):,} rows ({detail}; max difference {worst:.1e})"
    )


def fast_json(fast: dict[str, Any]) -> str:
    """Indented to be read when small (a linear form); compact when large (a forest's nodes)."""
    compact = json.dumps(fast, separators=(",", ":"))
    return json.dumps(fast, indent=1) if len(compact) < 100_000 else compact


def write_artifact(
    out: Path,
    pipeline: Any,
    X: Any,
    y: Any,
    *,
    target: str,
    positive_class: Any,
    threshold: float,
    metrics: dict[str, Any],
    training: dict[str, Any],
) -> dict[str, Any]:
    """Write model.joblib, fast.json (when it agrees) and manifest.json into `out`; return the manifest."""
    import joblib
    import numpy as np
    import pandas as pd
    import sklearn

    classes = [plain(c) for c in pipeline.classes_]
    if len(classes) != 2:
        raise ModelError(f"the model must be a binary classifier; it has classes {classes}")
    if positive_class not in classes:
        raise ModelError(f"positive class {positive_class!r} is not one of the model's classes {classes}")
    positive_index = classes.index(positive_class)
    schema = infer_schema(X, pipeline, positive_index)
    out.mkdir(parents=True, exist_ok=True)
    # Everything is computed before the first file is replaced: a failure leaves the old artifact whole.
    fast, fast_reason = build_fast_form(pipeline, X, schema, positive_index, threshold)
    _atomic_write(out / MODEL_FILE, lambda f: joblib.dump(pipeline, f, compress=3))
    if fast is not None:
        _atomic_write(out / FAST_FILE, lambda f: f.write(fast_json(fast).encode()))
    elif (out / FAST_FILE).exists():
        (out / FAST_FILE).unlink()
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "feature_names": schema.names,
        "features": schema.as_list(),
        "target": target,
        "classes": classes,
        "positive_class": positive_class,
        "positive_index": positive_index,
        "threshold": threshold,
        "estimator": type(pipeline).__name__
        + ": "
        + " -> ".join(type(s).__name__ for _, s in getattr(pipeline, "steps", [])),
        "model_sha256": sha256_file(out / MODEL_FILE),
        "fast_sha256": sha256_file(out / FAST_FILE) if fast is not None else None,
        "fast_reason": fast_reason,
        "versions": {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "pandas": pd.__version__},
        "metrics": metrics,
        "training": training,
        "label_share": float(np.mean(np.asarray(y) == positive_class)),
    }
    manifest["manifest_sha256"] = manifest_digest(manifest)
    _atomic_write(out / MANIFEST_FILE, lambda f: f.write((json.dumps(manifest, indent=2) + "\n").encode()))
    return manifest


def _atomic_write(path: Path, write: Any) -> None:
    """Write to a temporary file and rename, so a crash never leaves a half-written artifact."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as f:
        tmp = Path(f.name)
        try:
            write(f)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    tmp.chmod(0o644)  # mkstemp makes files private; an artifact is meant to be read
    tmp.replace(path)
