"""python -m core.score: a file in, the same rows scored out, in order, nothing stored."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core import default_model, predict
from core.model import DEFAULT_MODEL_DIR, load_model
from core.score import CHUNK_ROWS, main

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["PassengerId", "Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Cabin", "Embarked"]
GOOD_ROWS = [
    ["1", "3", "male", "22", "1", "0", "7.25", "", "S"],
    ["2", "1", "female", "38", "1", "0", "71.2833", "C85", "C"],
    ["3", "3", "female", "NA", "0", "0", "7.925", "", "S"],  # NA: missing, as pandas reads it
    ["4", "2.0", "male", "35", "0", "0", "8.05", "", "Atlantis"],  # a whole float for an integer; an unseen port
]
# (the row, what its error must say)
BAD_ROWS = [
    (["5", "x", "male", "22", "1", "0", "7.25", "", "S"], "Pclass: 'x' is not a number"),
    (["6", "2.5", "male", "22", "1", "0", "7.25", "", "S"], "Pclass: must be a whole number"),
    (["7", "3", "male", "-4", "1", "0", "7.25", "", "S"], "Age: must be at least"),
    (["8", "3", "male", "22", "1", "0", "inf", "", "S"], "Fare: must be a finite number"),
    (["9", "3", "male", "22"], "has 4 fields where the header has 9"),
]


def observation_of(row: list[str]) -> dict[str, Any]:
    """What the row means, written by hand: the expected answer comes from core.predict."""
    values = dict(zip(COLUMNS, row))
    number = {"": None, "NA": None}
    return {
        "Pclass": int(float(values["Pclass"])), "Sex": values["Sex"],
        "Age": number.get(values["Age"], None) if values["Age"] in number else float(values["Age"]),
        "SibSp": int(values["SibSp"]), "Parch": int(values["Parch"]), "Fare": float(values["Fare"]),
        "Cabin": values["Cabin"] or None, "Embarked": values["Embarked"] or None,
    }


def write_csv(path: Path, rows: list[list[str]], header: list[str] = COLUMNS) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    status = main(["--model", str(DEFAULT_MODEL_DIR), *args], stderr=err)
    return status, err.getvalue()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_every_row_scored_is_exit_0_with_the_input_columns_then_the_answer(tmp_path: Path) -> None:
    out = tmp_path / "scored.csv"
    status, err = run("--data", str(write_csv(tmp_path / "in.csv", GOOD_ROWS)), "--out", str(out))

    assert status == 0, err
    assert err.strip().splitlines()[-1] == "read 4 rows: 4 scored, 0 rejected"
    rows = read_csv(out)
    assert list(rows[0]) == [*COLUMNS, "proba", "predicted_class", "error"]
    for row, source in zip(rows, GOOD_ROWS):
        assert [row[c] for c in COLUMNS] == source  # copied through as written
        expected = predict(observation_of(source))
        assert float(row["proba"]) == pytest.approx(expected.proba, abs=1e-15)
        assert row["predicted_class"] == str(int(expected.predicted_class)) and row["error"] == ""


def test_bad_rows_are_kept_in_place_with_their_error_and_exit_1(tmp_path: Path) -> None:
    rows = [GOOD_ROWS[0], *[r for r, _ in BAD_ROWS], GOOD_ROWS[1]]
    out = tmp_path / "scored.csv"
    status, err = run("--data", str(write_csv(tmp_path / "in.csv", rows)), "--out", str(out))

    assert status == 1
    assert err.strip().splitlines()[-1] == "read 7 rows: 2 scored, 5 rejected (first at lines 3, 4, 5, 6, 7)"
    scored = read_csv(out)
    assert [r["PassengerId"] for r in scored] == ["1", "5", "6", "7", "8", "9", "2"]
    for row, (_, message) in zip(scored[1:6], BAD_ROWS):
        assert message in row["error"] and row["proba"] == "" and row["predicted_class"] == ""
    assert scored[0]["error"] == scored[-1]["error"] == ""


def test_the_summary_names_only_the_first_few_lines(tmp_path: Path) -> None:
    rows = [BAD_ROWS[0][0]] * 8
    status, err = run("--data", str(write_csv(tmp_path / "in.csv", rows)), "--out", str(tmp_path / "o.csv"))
    assert status == 1 and err.strip().endswith("(first at lines 2, 3, 4, 5, 6, …)")


def test_an_empty_file_and_a_header_alone_give_empty_outputs(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert run("--data", str(empty), "--out", str(tmp_path / "a.csv"))[0] == 0
    assert (tmp_path / "a.csv").read_text() == ""

    status, err = run("--data", str(write_csv(tmp_path / "h.csv", [])), "--out", str(tmp_path / "b.csv"))
    assert status == 0 and "read 0 rows" in err
    assert (tmp_path / "b.csv").read_text() == ",".join([*COLUMNS, "proba", "predicted_class", "error"]) + "\n"


def test_a_file_of_several_chunks_keeps_every_row_in_order(tmp_path: Path) -> None:
    count = 2 * CHUNK_ROWS + 17
    rows = [[str(k), *GOOD_ROWS[k % 4][1:]] for k in range(count)]
    rows[CHUNK_ROWS + 3] = [str(CHUNK_ROWS + 3), *BAD_ROWS[0][0][1:]]
    out = tmp_path / "scored.csv"
    status, err = run("--data", str(write_csv(tmp_path / "in.csv", rows)), "--out", str(out))

    summary = f"read {count:,} rows: {count - 1:,} scored, 1 rejected (first at line {CHUNK_ROWS + 5})"
    assert status == 1 and summary in err
    scored = read_csv(out)
    assert [r["PassengerId"] for r in scored] == [str(k) for k in range(count)]
    expected = [predict(observation_of(GOOD_ROWS[k % 4])).proba for k in range(4)]
    assert all(float(r["proba"]) == pytest.approx(expected[k % 4], abs=1e-15)
               for k, r in enumerate(scored) if k != CHUNK_ROWS + 3)


def test_json_lines_in_json_lines_out(tmp_path: Path) -> None:
    good = {"id": "a", **observation_of(GOOD_ROWS[0])}
    lines = [json.dumps(good), "", json.dumps([1]), "{not json", json.dumps({**good, "Age": "old"})]
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"

    status, err = run("--data", str(data), "--out", str(out))

    assert status == 1 and "read 4 rows: 1 scored, 3 rejected (first at lines 3, 4, 5)" in err
    answers = [json.loads(line) for line in out.read_text().splitlines()]
    assert answers[0] == {**good, "proba": predict(observation_of(GOOD_ROWS[0])).proba, "predicted_class": False,
                          "error": None}
    assert answers[1]["error"].startswith("must be a JSON object") and answers[2]["error"].startswith("not JSON")
    assert answers[3]["error"] == "Age: must be a number, got string" and answers[3]["proba"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "missing.csv", "--out", "o.csv"], "data file not found: missing.csv"),
        (["--data", "{csv}", "--out", "o.jsonl"], "must have the format of --data"),
        (["--data", "{no_age}", "--out", "o.csv"], "the header has no column Age"),
        (["--data", "{clash}", "--out", "o.csv"], "already has a column proba"),
        (["--data", "{csv}", "--out", "{csv}"], "must not be the --data file"),
        (["--data", "{csv}", "--out", "no-such-dir/o.csv"], "No such file or directory"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    files = {
        "csv": write_csv(tmp_path / "in.csv", GOOD_ROWS),
        "no_age": write_csv(tmp_path / "no_age.csv", [r[:3] + r[4:] for r in GOOD_ROWS], COLUMNS[:3] + COLUMNS[4:]),
        "clash": write_csv(tmp_path / "clash.csv", [[*r, "0.5"] for r in GOOD_ROWS], [*COLUMNS, "proba"]),
    }
    status, err = run(*[a.format(**files) for a in args])
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not list(tmp_path.glob("*.partial"))


def test_an_unknown_model_and_missing_arguments_are_exit_2_in_one_line(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "in.csv", GOOD_ROWS)
    for args in (["--model", str(tmp_path), "--data", str(data), "--out", str(tmp_path / "o.csv")], ["--data", "x"]):
        done = subprocess.run([sys.executable, "-m", "core.score", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr


class SteppingClock:
    """A clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_progress_bar_is_drawn_when_the_run_lasts_more_than_a_moment(tmp_path: Path) -> None:
    rows = [[str(k), *GOOD_ROWS[0][1:]] for k in range(3 * CHUNK_ROWS)]
    data = write_csv(tmp_path / "in.csv", rows)

    slow, quick = io.StringIO(), io.StringIO()
    assert main(["--model", str(DEFAULT_MODEL_DIR), "--data", str(data), "--out", str(tmp_path / "a.csv")],
                stderr=slow, clock=SteppingClock(1.0)) == 0
    assert main(["--model", str(DEFAULT_MODEL_DIR), "--data", str(data), "--out", str(tmp_path / "b.csv")],
                stderr=quick, clock=SteppingClock(0.0)) == 0

    assert "\rscoring [" in slow.getvalue() and "100% 3,000 rows" in slow.getvalue()
    assert "scoring [" not in quick.getvalue()
    assert quick.getvalue() == "read 3,000 rows: 3,000 scored, 0 rejected\n"


def test_scoring_stores_nothing_and_matches_scikit_learns_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = write_csv(tmp_path / "in.csv", GOOD_ROWS[:3])
    assert run("--data", str(data), "--out", "o.csv")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "o.csv"]

    # scikit-learn on the same file read by pandas, through the artifact's own pipeline.
    frame = pd.read_csv(data)
    sklearn = load_model(DEFAULT_MODEL_DIR, engine="sklearn")
    features = frame[default_model().schema.names].astype(object)
    expected = sklearn.scorer.proba_many(
        [[None if pd.isna(v) else v for v in row] for row in features.itertuples(index=False)]
    )
    assert [float(r["proba"]) for r in read_csv(tmp_path / "o.csv")] == pytest.approx(expected, abs=1e-9)




def test_blank_lines_are_skipped_as_pandas_skips_them(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "in.csv", GOOD_ROWS[:2])
    data.write_text(data.read_text() + "\n\n")
    status, err = run("--data", str(data), "--out", str(tmp_path / "o.csv"))
    assert status == 0 and "read 2 rows: 2 scored, 0 rejected" in err


def test_a_file_the_csv_reader_cannot_read_is_a_usage_error_in_one_line(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "in.csv", [[*GOOD_ROWS[0][:8], "S" * 200_000]])
    status, err = run("--data", str(data), "--out", str(tmp_path / "o.csv"))
    assert status == 2 and len(err.strip().splitlines()) == 1 and "cannot be read as CSV" in err
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.glob("*.partial"))


def test_json_lines_output_stays_json_and_keeps_what_the_input_had(tmp_path: Path) -> None:
    good = {"id": "a", **observation_of(GOOD_ROWS[0])}
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps(good) + "\n" + json.dumps(good).replace('"Fare": 7.25', '"Fare": NaN') + "\n")
    status, err = run("--data", str(data), "--out", str(tmp_path / "o.jsonl"))
    assert status == 1
    answers = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]  # strict JSON
    assert answers[1]["error"].startswith("not JSON: NaN")

    data.write_text(json.dumps({**good, "proba": 0.3}) + "\n")
    status, err = run("--data", str(data), "--out", str(tmp_path / "p.jsonl"))
    assert status == 2 and "line 1 already has a key proba" in err and not (tmp_path / "p.jsonl").exists()
