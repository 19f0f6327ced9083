"""Every family of fast form against scikit-learn, on the Titanic table, measured side by side.

    python -m bench.forms_bench [--rounds 15] [--out-dir DIR]

Each model is fitted on ../shared/data/titanic.csv with scikit-learn's defaults (a 100-tree
forest grows to the depth it likes), built into an artifact as core.build.package would, and then
timed, the cases taking turns round by round (medians of per-call times):
- core.predict: validation and the fast form (what the service runs per observation);
- predict_many, per row: the batch path on 1,000 observations;
- predict_proba, one row: scikit-learn on a one-row DataFrame (the common way to serve);
and, for the forest, two other ways to evaluate the same trees in pure Python from fast.json:
a loop over the flattened node arrays, and one generated function per tree.
Then each artifact's Lambda package size (scripts/build_lambda_package.py) and load time.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.core_bench import OBSERVATION
from bench.stats import interleaved_medians

CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "titanic.csv"
CATEGORIES = ["Sex", "Embarked", "Cabin"]
NUMBERS = ["Age", "Fare", "Parch", "Pclass", "SibSp"]


def pipelines() -> dict[str, Callable[[], Any]]:
    import category_encoders
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    def encoded() -> Any:
        categories = make_pipeline(
            SimpleImputer(strategy="constant", fill_value="missing"), OneHotEncoder(handle_unknown="ignore")
        )
        return ColumnTransformer([("cat", categories, CATEGORIES)], remainder=SimpleImputer(), sparse_threshold=0)

    return {
        # Fitted on the number columns only (NUMBERS): no ColumnTransformer at all.
        "SimpleImputer + StandardScaler + LR (plain Pipeline)": lambda: make_pipeline(
            SimpleImputer(), StandardScaler(), LogisticRegression()
        ),
        "tutorial: category_encoders.OneHotEncoder + SimpleImputer + LR": lambda: make_pipeline(
            category_encoders.OneHotEncoder(use_cat_names=True), SimpleImputer(), LogisticRegression(max_iter=2000)
        ),
        "DecisionTreeClassifier": lambda: make_pipeline(encoded(), DecisionTreeClassifier(random_state=0)),
        "RandomForestClassifier, 100 trees": lambda: make_pipeline(
            encoded(), RandomForestClassifier(100, random_state=0)
        ),
        "ExtraTreesClassifier, 100 trees": lambda: make_pipeline(encoded(), ExtraTreesClassifier(100, random_state=0)),
        "GradientBoostingClassifier (default)": lambda: make_pipeline(
            encoded(), GradientBoostingClassifier(random_state=0)
        ),
        "HistGradientBoostingClassifier (default)": lambda: make_pipeline(
            encoded(), HistGradientBoostingClassifier(random_state=0)
        ),
        "HistGradientBoostingClassifier, native categories": lambda: HistGradientBoostingClassifier(
            categorical_features=CATEGORIES, random_state=0
        ),
    }


def array_walk(trees: list[dict[str, Any]]) -> Callable[[list[float]], float]:
    """The alternative to generated code: a loop over each tree's flattened node arrays."""
    flat = [(t["feature"], t["threshold"], t["left"], t["right"], t["value"]) for t in trees]
    n = float(len(trees))

    def proba(x: list[float]) -> float:
        total = 0.0
        for feature, threshold, left, right, value in flat:
            node = 0
            while left[node] >= 0:
                node = left[node] if x[feature[node]] <= threshold[node] else right[node]
            total += value[node]
        return total / n

    return proba


def per_tree_functions(data: dict[str, Any]) -> Callable[[list[float]], float]:
    """The other alternative: one generated function per tree, called in a loop."""
    from core.forms.steps import StepSource
    from core.forms.trees import TreeSource

    outputs = list(range(len(data["outputs"])))
    steps = StepSource(len(outputs), [])
    names = [f"s{k}" for k in outputs]
    functions = []
    for tree in data["model"]["trees"]:
        body = TreeSource(steps, outputs).lines(tree, "p", indent=1)
        source = f"def tree({', '.join(names)}):\n p = 0.0\n" + "\n".join(body) + "\n return p\n"
        namespace: dict[str, Any] = {}
        exec(compile(source, "<tree>", "exec"), namespace)  # noqa: S102 - the bench's own code
        functions.append(namespace["tree"])
    n = float(len(functions))

    def proba(x: list[float]) -> float:
        return sum(f(*x) for f in functions) / n

    return proba


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument("--no-packages", action="store_true", help="skip the Lambda package sizes")
    args = parser.parse_args()
    if not CSV.is_file():
        sys.exit(f"needs {CSV} (the Titanic table)")
    import pandas as pd

    from core import load_model, predict, predict_many
    from core.build.artifact import write_artifact
    from core.model import DEFAULT_MODEL_DIR, SklearnScorer

    table = pd.read_csv(CSV)
    X, y = table.drop(columns=["Survived", "PassengerId", "Name", "Ticket"]), table["Survived"]
    work = args.out_dir or Path(tempfile.mkdtemp(prefix="forms-bench-"))
    directories = {"shipped: ColumnTransformer + PolynomialFeatures + LR": DEFAULT_MODEL_DIR}
    for name, make in pipelines().items():
        directory = work / f"model{len(directories)}"
        features = X[NUMBERS] if "plain Pipeline" in name else X
        pipeline = make().fit(features, y)
        write_artifact(directory, pipeline, features, y, target="Survived", positive_class=1, threshold=0.5,
                       metrics={}, training={"command": "bench.forms_bench"})
        directories[name] = directory
    batch = [OBSERVATION] * 1000
    print(f"# fast forms: Python {platform.python_version()}, {platform.machine()}, {sys.platform}")
    print("| model | engine | core.predict | predict_many, per row | predict_proba, one row | ratio |"
          " fast.json | first load (compiles) | later loads (cache) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    forest_data = None
    for name, directory in directories.items():
        load_times = []
        for cache in (False, True):
            if not cache:
                for stale in (directory / "__pycache__").glob("fast-*"):
                    stale.unlink()
            start = time.perf_counter()
            model = load_model(directory)
            load_times.append(time.perf_counter() - start)
        slow = load_model(directory, engine="sklearn")
        scorer = slow.scorer
        assert isinstance(scorer, SklearnScorer)
        values, _ = model.schema.validate(OBSERVATION)
        frame = scorer.frame([values])
        assert abs(predict(OBSERVATION, model=model).proba - float(scorer.pipeline.predict_proba(frame)[0, 1])) <= 1e-9
        cases = {
            "predict": (lambda model=model: predict(OBSERVATION, model=model), 2000),
            "many": (lambda model=model: predict_many(batch, model=model), 2),
            "sklearn": (lambda scorer=scorer, frame=frame: scorer.pipeline.predict_proba(frame), 20),
        }
        medians = interleaved_medians(cases, rounds=args.rounds)
        medians["many"] /= len(batch)
        size = (directory / "fast.json").stat().st_size if model.engine == "fast" else 0
        print(f"| {name} | {model.engine} | {medians['predict'] * 1e6:.1f} µs | {medians['many'] * 1e6:.1f} µs |"
              f" {medians['sklearn'] * 1e6:,.0f} µs | {medians['sklearn'] / medians['predict']:,.0f}× |"
              f" {size / 1e6:.2f} MB | {load_times[0] * 1e3:.0f} ms | {load_times[1] * 1e3:.0f} ms |")
        if name.startswith("RandomForest"):
            forest_data = json.loads((directory / "fast.json").read_text())
            forest_model = model
    assert forest_data is not None
    compare_forest_evaluators(forest_data, forest_model, args.rounds)
    if not args.no_packages:
        package_sizes(directories, work)


def compare_forest_evaluators(data: dict[str, Any], model: Any, rounds: int) -> None:
    """The same 100 trees on the same encoded row, three ways, trees only (no validation)."""
    from core.forms import RUNTIME, load_form
    from core.forms.steps import StepSource

    values, _ = model.schema.validate(OBSERVATION)
    encoded_source = StepSource(data["inputs"], data["steps"])
    lines = encoded_source.lines(data["outputs"])
    outputs = ", ".join(f"s{o}" for o in data["outputs"])
    code = "def encode(row):\n" + "".join(f" {line}\n" for line in lines) + f" return [{outputs}]\n"
    namespace = {**encoded_source.namespace, **RUNTIME}
    exec(compile(code, "<encode>", "exec"), namespace)  # noqa: S102 - the bench's own code
    x = [float(v) for v in namespace["encode"](values)]
    walk, per_tree, whole = array_walk(data["model"]["trees"]), per_tree_functions(data), load_form(data)
    nodes = sum(len(t["left"]) for t in data["model"]["trees"])
    depth = max(_depth(t) for t in data["model"]["trees"])
    cases = {
        "loop over flattened node arrays": (lambda: walk(x), 200),
        "one generated function per tree": (lambda: per_tree(x), 1000),
        "one generated function for the forest (encoding included)": (lambda: whole.proba(values), 1000),
    }
    medians = interleaved_medians(cases, rounds=rounds)
    print(f"\n# 100-tree forest ({nodes:,} nodes, deepest tree {depth} levels), three pure-Python evaluators")
    print("| evaluator | median per row |")
    print("| --- | ---: |")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds * 1e6:.1f} µs |")


def _depth(tree: dict[str, Any]) -> int:
    depth = {0: 0}
    for node in range(len(tree["left"])):
        if tree["left"][node] >= 0:
            depth[tree["left"][node]] = depth[tree["right"][node]] = depth[node] + 1
    return max(depth.values())


COLD_START = """
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import handler
response = handler.handler(json.loads(sys.argv[2]), None)
assert response["statusCode"] == 200, response
print(time.perf_counter() - start)
"""


def package_sizes(directories: dict[str, Path], work: Path, runs: int = 7) -> None:
    """Each model's Lambda package: its size, and the cold start of the unzipped package on
    Python 3.12 (read-only, as Lambda's code directory): import handler to the first answer."""
    import statistics
    import subprocess
    import zipfile

    from bench.servers import ROOT
    from scripts.build_lambda_package import find_interpreter

    interpreter = find_interpreter("3.12")
    event = (ROOT / "tests" / "lambda" / "events" / "apigw_rest_v1_predict.json").read_text()
    print("\n# Lambda package per model (python3.12, manylinux x86_64; cold start: SQLite, median of runs)")
    print("| model | package | cold start |")
    print("| --- | --- | ---: |")
    for name, directory in directories.items():
        out = work / f"{directory.name}.zip"
        done = subprocess.run(
            [sys.executable, "scripts/build_lambda_package.py", "--model-dir", str(directory), "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=1800,
        )
        line = done.stdout.strip().splitlines()[-1] if done.returncode == 0 else done.stderr.strip()[-200:]
        cold = "no Python 3.12"
        if done.returncode == 0 and interpreter:
            task = work / f"{directory.name}-task"
            with zipfile.ZipFile(out) as archive:
                archive.extractall(task)
            subprocess.run(["chmod", "-R", "a-w", str(task)], check=True)
            times = []
            for run in range(runs):
                env = {"STORE_URL": f"sqlite:///{work / f'{directory.name}-{run}.db'}", "PATH": "/usr/bin:/bin"}
                result = subprocess.run([interpreter, "-I", "-S", "-c", COLD_START, str(task), event],
                                        capture_output=True, text=True, env=env, timeout=300, check=True)
                times.append(float(result.stdout.strip().splitlines()[-1]))
            cold = f"{statistics.median(times) * 1e3:.0f} ms"
            subprocess.run(["chmod", "-R", "u+w", str(task)], check=True)
        print(f"| {name} | {line.split(': ', 1)[-1]} | {cold} |")


if __name__ == "__main__":
    main()
