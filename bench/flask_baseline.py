"""The common way to serve a pipeline, for comparison: Flask under gunicorn, a one-row
DataFrame and predict_proba per request, one SQLite insert per prediction.

    BASELINE_DB=/tmp/baseline.db gunicorn -w 2 bench.flask_baseline:app
"""

from __future__ import annotations

import json
import os
import sqlite3

import joblib
import numpy as np
import pandas as pd
from flask import Flask, jsonify, request

from core.model import DEFAULT_MODEL_DIR, MODEL_FILE

app = Flask(__name__)
pipeline = joblib.load(DEFAULT_MODEL_DIR / MODEL_FILE)
manifest = json.loads((DEFAULT_MODEL_DIR / "manifest.json").read_text())
dtypes = {f["name"]: ("object" if f["kind"] == "category" else "float64") for f in manifest["features"]}
connection = sqlite3.connect(os.environ.get("BASELINE_DB", "baseline.db"), timeout=30, check_same_thread=False)
connection.execute("PRAGMA journal_mode=WAL")
connection.execute("CREATE TABLE IF NOT EXISTS predictions (id TEXT PRIMARY KEY, observation TEXT, proba REAL)")


@app.post("/predict")
def predict():  # type: ignore[no-untyped-def]
    body = request.get_json()
    observation = body["observation"]
    frame = pd.DataFrame([{k: (np.nan if v is None else v) for k, v in observation.items()}]).astype(dtypes)
    proba = float(pipeline.predict_proba(frame[list(dtypes)])[0, 1])
    with connection:
        connection.execute(
            "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?)", (str(body["id"]), json.dumps(observation), proba)
        )
    return jsonify({"id": body["id"], "proba": proba, "predicted_class": proba >= 0.5})
