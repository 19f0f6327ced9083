"""The service's own log handler writes one JSON object per line (adapters/logs.py)."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime

import pytest

from adapters.logs import JsonLineFormatter, JsonMessage


@pytest.fixture()
def logged() -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLineFormatter())
    logger = logging.getLogger("sklearn_serve.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)


def lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_json_message_gives_its_fields_next_to_time_level_and_logger(logged: tuple) -> None:
    logger, out = logged
    logger.info(JsonMessage({"request_id": "abc", "route": "/predict", "status": 200, "latency_ms": 1.5}))
    [line] = lines(out)
    assert line == {"time": line["time"], "level": "INFO", "logger": "sklearn_serve.test_logs",
                    "request_id": "abc", "route": "/predict", "status": 200, "latency_ms": 1.5}
    assert datetime.fromisoformat(line["time"]).utcoffset().total_seconds() == 0


def test_text_is_a_message_and_a_traceback_stays_in_the_same_line(logged: tuple) -> None:
    logger, out = logged
    logger.warning("serving model %s from %s", "abc", "caf\u00e9/\n")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception(JsonMessage({"event": "unhandled_error", "level": "not mine"}))
    warning, error = lines(out)
    assert warning["message"] == "serving model abc from caf\u00e9/\n" and warning["level"] == "WARNING"
    assert error["event"] == "unhandled_error" and error["level"] == "ERROR"  # its own keys win
    assert "RuntimeError: boom" in error["exception"] and "Traceback" in error["exception"]
    assert out.getvalue().isascii() and len(out.getvalue().splitlines()) == 2


def test_other_handlers_read_a_json_message_as_its_json_object(logged: tuple) -> None:
    logger, _ = logged
    records: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(capture)
    try:
        logger.info(JsonMessage({"request_id": "abc", "status": 200}))
    finally:
        logger.removeHandler(capture)
    assert json.loads(records[0].getMessage()) == {"request_id": "abc", "status": 200}
