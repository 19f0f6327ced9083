"""Wrap your own fitted scikit-learn pipeline into a servable artifact.

    python -m core.build.package --model my_pipeline.joblib --data train.csv --target y --out artifacts/mine

The pipeline must be a binary classifier with `predict_proba` that takes a DataFrame of the
data's feature columns. The schema is inferred from the data; the metrics are computed on it
(in-sample: pass held-out data for honest figures). Errors are one line and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from core.cli import OneLineParser
from core.build.dataset import DataError, add_table_arguments, positive_class_of, read_table_arguments
from core.errors import ModelError


def in_sample_metrics(pipeline: Any, X: Any, y: Any, positive_index: int, positive_class: Any) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, brier_score_loss, roc_auc_score

    truth = (y == positive_class).to_numpy().astype(int)
    from core.model import as_fitted

    proba = pipeline.predict_proba(as_fitted(pipeline, X))[:, positive_index]
    return {
        "method": "computed by core.build.package on the data given (in-sample unless that data was held out)",
        "n": int(len(truth)),
        "roc_auc": float(roc_auc_score(truth, proba)),
        "accuracy": float(accuracy_score(truth, proba >= 0.5)),
        "brier_score": float(brier_score_loss(truth, proba)),
    }


def load_user_pipeline(path: Path) -> Any:
    """Unpickle the user's own file (trusted: it is theirs) and check it can serve."""
    import joblib

    if not path.is_file():
        raise DataError(f"model file not found: {path}")
    try:
        pipeline = joblib.load(path)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is reported as one line
        raise DataError(f"cannot load {path} with joblib: {type(e).__name__}: {e}") from e
    if not hasattr(pipeline, "predict_proba") or not hasattr(pipeline, "classes_"):
        raise DataError(f"{path} is not a fitted classifier with predict_proba")
    refusing = steps_refusing_unseen_categories(pipeline)
    if refusing:
        raise DataError(
            f"{path}: {', '.join(refusing)} is 'error', so a category unseen in training would fail the"
            " request; refit with handle_unknown='ignore' (or 'infrequent_if_exist')"
        )
    return pipeline


def steps_refusing_unseen_categories(pipeline: Any) -> list[str]:
    """The `handle_unknown` parameters of `pipeline` (nested ones too) set to 'error'.

    The service accepts an unseen category and reports it in the prediction's warnings; such an
    encoder would raise instead, and every request carrying a new category would fail.
    """
    params = pipeline.get_params(deep=True) if hasattr(pipeline, "get_params") else {}
    return [
        name for name, value in params.items()
        if name.rsplit("__", 1)[-1] == "handle_unknown" and isinstance(value, str) and value == "error"
    ]


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m core.build.package", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="your fitted pipeline (joblib file)")
    add_table_arguments(parser)
    args = parser.parse_args(argv)
    try:
        X, y, drop = read_table_arguments(args)
        pipeline = load_user_pipeline(args.model)
        positive = positive_class_of(y)
        classes = [c.item() if hasattr(c, "item") else c for c in pipeline.classes_]
        if positive not in classes:
            raise DataError(f"the model's classes {classes} do not include the data's positive class {positive!r}")
        try:
            metrics = in_sample_metrics(pipeline, X, y, classes.index(positive), positive)
        except Exception as e:  # noqa: BLE001 - the user's pipeline rejected the data
            raise DataError(f"the model cannot score {args.data}: {type(e).__name__}: {e}") from e
        from core.build.artifact import data_fingerprint, write_artifact

        manifest = write_artifact(
            args.out,
            pipeline,
            X,
            y,
            target=args.target,
            positive_class=positive,
            threshold=args.threshold,
            metrics=metrics,
            training={
                "command": "core.build.package",
                "source_model": args.model.name,
                "data": Path(args.data).name,
                "dropped": drop,
                "fingerprint": data_fingerprint(X.assign(**{args.target: y})),
            },
        )
    except (DataError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. --out under a file, or not writable
        print(f"error: cannot write {args.out}: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} (model {manifest['model_sha256'][:12]}, serving: {manifest['fast_reason']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
