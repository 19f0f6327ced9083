"""The README's curl examples, sent as they are written, answer what the README shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

README = Path(__file__).resolve().parents[2] / "README.md"
CURL = re.compile(r"curl -X POST http://localhost:\d+(?P<path>/\S+) -d '(?P<body>[^']*)' -H \"(?P<header>[^\"]*)\"")


def readme() -> str:
    if not README.exists():
        pytest.skip("no README.md")
    return README.read_text(encoding="utf-8")


def test_the_readme_curl_examples_work_in_order(client: TestClient) -> None:
    examples = list(CURL.finditer(readme()))
    assert [m["path"] for m in examples][:2] == ["/predict", "/update"]

    for example in examples:
        name, _, value = example["header"].partition(":")
        response = client.post(example["path"], content=example["body"].encode(), headers=[(name, value)])
        assert response.status_code == 200, (example["path"], response.text)


def test_the_readme_response_example_has_the_fields_and_answer_of_a_real_response(client: TestClient) -> None:
    text = readme()
    shown = json.loads(re.search(r"```json\n(.*?)\n```", text, re.S)[1])  # type: ignore[index]
    predict = next(m for m in CURL.finditer(text) if m["path"] == "/predict")

    response = client.post("/predict", content=predict["body"].encode(), headers={"Content-Type": "application/json"})
    actual = response.json()

    assert set(actual) == set(shown)
    for field in ("id", "observation_id", "observation", "predicted_class", "threshold", "model_version", "true_class",
                  "warnings"):
        assert actual[field] == shown[field], field
    assert actual["proba"] == pytest.approx(shown["proba"], abs=1e-12)
