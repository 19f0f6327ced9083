"""Reading a training table for the command-line tools, with one-line errors for bad input."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


class DataError(Exception):
    """The data or arguments given to a command-line tool cannot be used (one-line message)."""


def read_table(path: str | Path, target: str, drop: list[str]) -> tuple[Any, Any]:
    """Read a CSV and split it into features and a binary target, dropping `drop` columns."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path} as CSV: {str(e).strip()}") from e
    unknown = [c for c in [target, *drop] if c not in frame.columns]
    if unknown:
        raise DataError(
            f"unknown column(s) {', '.join(unknown)} in {path}; it has: {', '.join(map(str, frame.columns))}"
        )
    y = frame[target]
    if y.isna().any():
        raise DataError(f"target column {target!r} has {int(y.isna().sum())} missing value(s)")
    classes = sorted(y.unique().tolist())
    if len(classes) != 2:
        raise DataError(f"target column {target!r} must have exactly 2 classes, found {len(classes)}: {classes[:10]}")
    X = frame.drop(columns=[target, *drop])
    if X.shape[1] == 0:
        raise DataError("no feature columns left after dropping the target and --drop columns")
    return X, y


def positive_class_of(y: Any) -> Any:
    """The positive class: 1 or True when present, else the larger of the two values."""
    classes = sorted(y.unique().tolist())
    for candidate in (1, True):
        if candidate in classes:
            return candidate
    return classes[-1]


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both command-line tools take: the table, its target, the output artifact."""
    parser.add_argument("--data", required=True, help="CSV file with the features and the target")
    parser.add_argument("--target", required=True, help="the binary target column")
    parser.add_argument("--drop", default="", help="comma-separated columns that are not features")
    parser.add_argument("--out", required=True, type=Path, help="artifact directory to write")
    parser.add_argument("--threshold", type=float, default=0.5, help="decision threshold (default 0.5)")


def read_table_arguments(args: argparse.Namespace) -> tuple[Any, Any, list[str]]:
    """Check the threshold and read the table the options name: (X, y, dropped columns)."""
    if not 0.0 < args.threshold < 1.0:
        raise DataError("--threshold must be between 0 and 1")
    drop = [c.strip() for c in args.drop.split(",") if c.strip()]
    X, y = read_table(args.data, args.target, drop)
    return X, y, drop
