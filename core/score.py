"""Score a file of observations with a model artifact, offline: nothing is stored.

    python -m core.score --model artifacts/titanic --data passengers.csv --out scored.csv

CSV, or JSON Lines for `.jsonl` / `.ndjson` (input and output alike). The file is read and
written in chunks of CHUNK_ROWS rows, so memory stays flat whatever its size. Each output row is
its input row, in order, followed by `proba`, `predicted_class` and `error`: empty for a row that
was scored, the field and the problem for one that could not be (its `proba` stays empty). CSV
values are read as the manifest's schema says (an integer feature is parsed as an integer, the
texts pandas reads as missing are missing), never guessed row by row; columns that are not
features are copied through and not given to the model.

Exit status 0 when every row was scored, 1 when some were not (with a summary line on stderr:
rows read, scored, rejected, the first few line numbers), 2 for a usage error (a missing file,
an unknown model, a feature column missing from the header). A progress bar is drawn on stderr
once the run has taken more than a moment.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.cli import USAGE_ERROR, OneLineParser
from core.errors import InvalidObservation, ModelError
from core.model import Model, load_model
from core.predict import predict_each
from core.progress import bar
from core.schema import Schema

CHUNK_ROWS = 1000
ADDED_COLUMNS = ("proba", "predicted_class", "error")
JSON_LINES = (".jsonl", ".ndjson")
# The texts pandas.read_csv reads as missing by default (its STR_NA_VALUES): training read the
# CSV with pandas, so scoring reads missing values the same way.
MISSING_TEXTS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
    "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
SOME_REJECTED = 1
LINES_SHOWN = 5
# The progress bar appears after this many seconds, and is redrawn at most this often.
PROGRESS_AFTER, PROGRESS_EVERY = 1.0, 0.2


class UsageError(Exception):
    """The command cannot run as asked (one line for the user)."""


@dataclass
class Row:
    """One input row: where it was, what is written back, and its observation or why there is none."""

    line: int
    passed_through: Any  # the CSV fields, or the JSON object
    observation: dict[str, Any] | None
    problem: str | None = None


@dataclass
class Summary:
    read: int = 0
    scored: int = 0
    rejected_lines: list[int] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejected_lines)

    def line(self) -> str:
        text = f"read {self.read:,} rows: {self.scored:,} scored, {self.rejected:,} rejected"
        if self.rejected:
            shown = ", ".join(str(n) for n in self.rejected_lines[:LINES_SHOWN])
            more = ", …" if self.rejected > LINES_SHOWN else ""
            text += f" (first at line{'s' if self.rejected > 1 else ''} {shown}{more})"
        return text


def _parse_text(kind: str, text: str) -> Any:
    """A CSV field as the schema's kind says; raises ValueError when it is not one."""
    if text in MISSING_TEXTS:
        return None
    if kind == "category":
        return text
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            pass  # "3.0" is a whole number too: the schema decides
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def csv_rows(lines: Iterable[str], schema: Schema) -> tuple[list[str], Iterator[Row]]:
    """The header and the rows of a CSV, each with its observation parsed by `schema`."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return [], iter(())
    missing = [name for name in schema.names if name not in header]
    if missing:
        raise UsageError(f"the header has no column {', '.join(missing)} (features of the model); "
                         f"it has: {', '.join(header)}")
    clashing = [name for name in ADDED_COLUMNS if name in header]
    if clashing:
        raise UsageError(f"the input already has a column {', '.join(clashing)}, which the output adds; rename it")
    positions = [(f.name, f.kind, header.index(f.name)) for f in schema.features]

    def rows() -> Iterator[Row]:
        for fields in reader:
            line = reader.line_num
            if not fields:  # a blank line, which pandas skips too
                continue
            if len(fields) != len(header):
                # Written back with the header's columns, so that the added ones stay in their place.
                aligned = (fields + [""] * len(header))[: len(header)]
                yield Row(line, aligned, None, f"has {len(fields)} fields where the header has {len(header)}")
                continue
            observation, problems = {}, []
            for name, kind, position in positions:
                try:
                    observation[name] = _parse_text(kind, fields[position])
                except ValueError as e:
                    problems.append(f"{name}: {e}")
            yield Row(line, fields, None if problems else observation, "; ".join(problems) or None)

    return header, rows()


def json_rows(lines: Iterable[str], schema: Schema) -> Iterator[Row]:
    """The objects of a JSON Lines file (blank lines skipped), each with its features as the observation."""
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text, parse_constant=_not_json)
        except ValueError as e:
            yield Row(line, {}, None, f"not JSON: {e}")
            continue
        if not isinstance(value, dict):
            yield Row(line, {}, None, f"must be a JSON object, not {type(value).__name__}")
            continue
        clashing = [name for name in ADDED_COLUMNS if name in value]
        if clashing:
            raise UsageError(f"line {line} already has a key {', '.join(clashing)}, which the output adds; rename it")
        # Keys that are not features go through to the output, not to the model (no warning for each).
        yield Row(line, value, {name: value[name] for name in schema.names if name in value})


def _not_json(constant: str) -> Any:
    # Python's json reads NaN and Infinity, which are not JSON: the output must stay JSON.
    raise ValueError(f"{constant} is not a JSON value")


def _error_text(error: InvalidObservation) -> str:
    return "; ".join(f"{e.field}: {e.message}" for e in error.errors)


class Progress:
    """`label [####------] 42% 420,000 rows` on stderr, once the run has lasted PROGRESS_AFTER s."""

    def __init__(self, stream: IO[str], total_chars: int, clock: Callable[[], float], width: int = 30) -> None:
        self.stream, self.total, self.clock, self.width = stream, max(total_chars, 1), clock, width
        self.started = clock()
        self.drawn_at: float | None = None

    def update(self, chars_done: int, rows: int) -> None:
        now = self.clock()
        if now - self.started < PROGRESS_AFTER or (self.drawn_at is not None and now - self.drawn_at < PROGRESS_EVERY):
            return
        self.drawn_at = now
        share = min(chars_done / self.total, 1.0)
        self.stream.write(f"\rscoring {bar(chars_done, self.total, self.width)} {share:4.0%} {rows:,} rows")
        self.stream.flush()

    def finish(self) -> None:
        if self.drawn_at is not None:
            self.stream.write("\n")


class _CountingLines:
    """A text stream's lines, counting the characters read (for the progress bar)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream, self.chars = stream, 0

    def __iter__(self) -> Iterator[str]:
        for line in self.stream:
            self.chars += len(line)
            yield line


def _chunks(rows: Iterator[Row]) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _scored(chunk: Sequence[Row], model: Model) -> list[tuple[float | None, bool | None, str | None]]:
    """(proba, predicted_class, error) for each row of `chunk`."""
    good = [row.observation for row in chunk if row.observation is not None]
    answers = iter(predict_each(good, model))
    results: list[tuple[float | None, bool | None, str | None]] = []
    for row in chunk:
        if row.observation is None:
            results.append((None, None, row.problem))
            continue
        answer = next(answers)
        if isinstance(answer, InvalidObservation):
            results.append((None, None, _error_text(answer)))
        else:
            results.append((answer.proba, answer.predicted_class, None))
    return results


def score_file(model: Model, data: Path, out: Path, progress: Progress | None = None) -> Summary:
    """Score every row of `data` into `out` (see the module docstring); returns the counts."""
    summary = Summary()
    as_json = data.suffix.lower() in JSON_LINES
    with data.open(encoding="utf-8-sig", newline="") as source, out.open("w", encoding="utf-8", newline="") as sink:
        lines = _CountingLines(source)
        if as_json:
            rows = json_rows(lines, model.schema)
            writer = None
        else:
            header, rows = csv_rows(lines, model.schema)
            writer = csv.writer(sink, lineterminator="\n")
            if header:
                writer.writerow([*header, *ADDED_COLUMNS])
        for chunk in _chunks(rows):
            for row, (proba, predicted, error) in zip(chunk, _scored(chunk, model)):
                summary.read += 1
                if error is None:
                    summary.scored += 1
                else:
                    summary.rejected_lines.append(row.line)
                if writer is None:
                    record = {**row.passed_through, "proba": proba, "predicted_class": predicted, "error": error}
                    sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                else:
                    writer.writerow([*row.passed_through, "" if proba is None else repr(proba),
                                     "" if predicted is None else int(predicted), error or ""])
            if progress is not None:
                progress.update(lines.chars, summary.read)
    return summary


def main(argv: list[str] | None = None, *, stderr: IO[str] | None = None,
         clock: Callable[[], float] = time.monotonic) -> int:
    err = stderr or sys.stderr
    parser = OneLineParser(prog="python -m core.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="the model artifact directory")
    parser.add_argument("--data", required=True, type=Path, help="observations: .csv, .jsonl or .ndjson")
    parser.add_argument("--out", required=True, type=Path, help="where to write the scored rows (same format)")
    args = parser.parse_args(argv)
    partial = args.out.with_name(args.out.name + ".partial")
    try:
        if not args.data.is_file():
            raise UsageError(f"data file not found: {args.data}")
        if (args.out.suffix.lower() in JSON_LINES) != (args.data.suffix.lower() in JSON_LINES):
            raise UsageError(f"--out {args.out} must have the format of --data {args.data} (CSV or JSON Lines)")
        if args.out.exists() and args.out.samefile(args.data):
            raise UsageError("--out must not be the --data file")
        model = load_model(args.model)
        progress = Progress(err, args.data.stat().st_size, clock)
        try:
            summary = score_file(model, args.data, partial, progress)
        finally:
            progress.finish()
        partial.replace(args.out)
    except (UsageError, ModelError) as e:
        print(f"error: {e}", file=err)
        return USAGE_ERROR
    except UnicodeDecodeError as e:
        print(f"error: {args.data} is not UTF-8 text ({e.reason} at byte {e.start})", file=err)
        return USAGE_ERROR
    except csv.Error as e:  # e.g. a field longer than the csv module's limit (131,072 characters)
        print(f"error: {args.data} cannot be read as CSV: {e}", file=err)
        return USAGE_ERROR
    except OSError as e:
        print(f"error: {e.strerror or e}: {e.filename or args.out}", file=err)
        return USAGE_ERROR
    finally:
        partial.unlink(missing_ok=True)
    print(summary.line(), file=err)
    return SOME_REJECTED if summary.rejected else 0


if __name__ == "__main__":
    sys.exit(main())
