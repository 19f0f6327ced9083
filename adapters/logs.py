"""Log records as JSON lines: what log platforms (Heroku's drains, CloudWatch) index by field."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# ASCII, whatever the stream's encoding; anything JSON cannot hold is written as its str():
# a log line must never fail.
_LINE = json.JSONEncoder(separators=(",", ":"), default=str)


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: `time` (UTC, ISO 8601), `level`, `logger`, then the message.

    A message that is itself a JSON object (the request line, the service's events) gives its
    fields; any other message is `message`. A traceback is `exception`, in the same line.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        message = record.getMessage()
        fields = _json_object(message)
        if fields is None:
            line["message"] = message
        else:
            line.update((key, value) for key, value in fields.items() if key not in line)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return _LINE.encode(line)


def _json_object(message: str) -> dict[str, Any] | None:
    if not message.startswith("{"):
        return None
    try:
        value = json.loads(message)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
