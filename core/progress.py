"""A dependency-free progress bar for the command-line tools (written to stderr)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int, label: str, stream: IO[str] | None = None, width: int = 30) -> Iterator[T]:
    """Yield `items`, drawing `label [####----] k/total` after each one."""
    out = stream or sys.stderr
    for done, item in enumerate(items, start=1):
        yield item
        out.write(f"\r{label} {bar(done, total, width)} {done}/{total}")
        out.flush()
    out.write("\n")


def bar(done: int, total: int, width: int = 30) -> str:
    """`[####------]`, `width` wide, filled to `done` of `total`."""
    filled = width * min(done, total) // max(total, 1)
    return f"[{'#' * filled}{'-' * (width - filled)}]"
