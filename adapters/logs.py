"""Log records as JSON lines: what log platforms (Heroku's drains, CloudWatch) index by field."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# ASCII, whatever the stream's encoding; anything JSON cannot hold is written as its str():
# a log line must never fail.
_LINE = json.JSONEncoder(separators=(",", ":"), default=str)


class JsonMessage:
    """A log message made of fields (the request line, the service's events).

    Any handler reads it as the JSON object of its fields (`str`); `JsonLineFormatter` takes the
    fields themselves, so a line is encoded once, and not at all when its level is off.
    """

    __slots__ = ("fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return _LINE.encode(self.fields)


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: `time` (UTC, ISO 8601), `level`, `logger`, then the message.

    A `JsonMessage` gives its fields (never replacing those three); any other message is
    `message`. A traceback is `exception`, in the same line.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        if isinstance(record.msg, JsonMessage) and not record.args:
            line.update((key, value) for key, value in record.msg.fields.items() if key not in line)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return _LINE.encode(line)
