"""core.predict against the common way of serving a pipeline, measured side by side.

    python -m bench.core_bench

Cases, interleaved round by round (medians of per-call times):
- core.predict: validation + the compiled fast form (what the service runs);
- core.predict (sklearn engine): the same validation, scoring through the fitted pipeline;
- common path: one-row DataFrame, dtypes cast, pipeline.predict_proba;
- sklearn batch: predict_proba on 1000 rows, per row;
- numpy dot product over the fitted weights (already encoded row): the floor.
"""

from __future__ import annotations

import platform
import sys

from bench.stats import interleaved_medians

OBSERVATION = {
    "Age": 22.0,
    "Cabin": None,
    "Embarked": "S",
    "Fare": 7.25,
    "Parch": 0,
    "Pclass": 3,
    "Sex": "male",
    "SibSp": 1,
}


def main() -> None:
    import joblib
    import numpy as np
    import pandas as pd

    from core import load_model, predict
    from core.model import DEFAULT_MODEL_DIR, MODEL_FILE

    fast = load_model(DEFAULT_MODEL_DIR)
    slow = load_model(DEFAULT_MODEL_DIR, engine="sklearn")
    pipeline = joblib.load(DEFAULT_MODEL_DIR / MODEL_FILE)
    dtypes = {f.name: ("object" if f.kind == "category" else "float64") for f in fast.schema.features}

    def common_path() -> float:
        # None must become NaN: in an object column scikit-learn's imputers do not see None as missing.
        frame = pd.DataFrame([{k: (np.nan if v is None else v) for k, v in OBSERVATION.items()}]).astype(dtypes)
        return float(pipeline.predict_proba(frame)[0, 1])

    row = {k: (np.nan if v is None else v) for k, v in OBSERVATION.items()}
    batch = pd.DataFrame([row] * 1000).astype(dtypes)
    encoded = pipeline[:-1].transform(pd.DataFrame([row]).astype(dtypes))[0]
    weights, intercept = pipeline[-1].coef_[0], float(pipeline[-1].intercept_[0])

    def dot() -> float:
        return 1.0 / (1.0 + float(np.exp(-(float(encoded @ weights) + intercept))))

    assert abs(predict(OBSERVATION, model=fast).proba - common_path()) <= 1e-12
    cases = {
        "core.predict (fast form)": (lambda: predict(OBSERVATION, model=fast), 20000),
        "core.predict (sklearn engine)": (lambda: predict(OBSERVATION, model=slow), 200),
        "common path: DataFrame + predict_proba": (common_path, 200),
        "sklearn 1000-row batch, per row": (lambda: pipeline.predict_proba(batch), 5),
        "numpy dot over fitted weights": (dot, 20000),
    }
    medians = interleaved_medians(cases, rounds=15)
    medians["sklearn 1000-row batch, per row"] /= 1000
    base = medians["core.predict (fast form)"]
    print(f"# core benchmark: Python {platform.python_version()}, {platform.machine()}, {sys.platform}")
    print("| case | median per observation | vs core.predict |")
    print("| --- | ---: | ---: |")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds * 1e6:.2f} µs | {seconds / base:.1f}× |")
    ratio = medians["common path: DataFrame + predict_proba"] / base
    print(f"\ncore.predict is {ratio:.0f}× faster than the common path (target ≥ 200×, ≤ 20 µs).")


if __name__ == "__main__":
    main()
