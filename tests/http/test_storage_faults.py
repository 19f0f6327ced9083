"""Storage faults are 503 problems, never 500s, and /health says when the store cannot take a write.

Real faults on real files: a lock file that cannot be opened, a read-only directory (a read-only
bind mount as root, whom file modes do not stop; file modes otherwise), and a full disk (a small
tmpfs, root only). Each time nothing is stored half-way, and the same app recovers by itself
once the fault is gone.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from adapters.storage import SqliteStore
from tests.helpers import MakeClient

IS_ROOT = os.geteuid() == 0


def mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip() or done.returncode}): needs root with CAP_SYS_ADMIN")


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=60, check=False)


@contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield path
    finally:
        unmount(path)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem under `directory` is full; returns it."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        chunk = b"\0" * 4096
        for _ in range(1 << 20):  # bounded: 4 GiB, far above the test filesystem's size
            try:
                out.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC
                return filler
    raise AssertionError("the filesystem never filled up")


def assert_unavailable(client: TestClient, passenger: dict, prediction_id: int) -> None:
    refused = client.post("/predict", json={"id": prediction_id, "observation": passenger})
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/store-unavailable")
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["type"].endswith("/store-unavailable")


def stored_ids(path: Path) -> list[int]:
    store = SqliteStore(path)
    try:
        return sorted(record.id for record in store.list(100).items)  # type: ignore[type-var]
    finally:
        store.close()


def test_a_lock_file_that_cannot_be_opened_is_503_and_health_says_so(
    make_client: MakeClient, tmp_path: Path, passenger: dict
) -> None:
    database = tmp_path / "predictions.db"
    client = make_client(store=SqliteStore(database))
    assert client.post("/predict", json={"id": 1, "observation": passenger}).status_code == 200
    client_b = make_client(store=SqliteStore(database))  # a new process's store: it opens the lock file
    os.unlink(f"{database}.lock")
    os.mkdir(f"{database}.lock")  # open(O_RDWR) fails for root too

    assert_unavailable(client_b, passenger, 2)

    os.rmdir(f"{database}.lock")
    assert client_b.get("/health").status_code == 200
    assert client_b.post("/predict", json={"id": 2, "observation": passenger}).status_code == 200
    assert stored_ids(database) == [1, 2]


@contextmanager
def read_only_view(directory: Path, tmp_path: Path) -> Iterator[Path]:
    """`directory` as a process that may not write there sees it."""
    if not IS_ROOT:
        modes = {p: p.stat().st_mode for p in [directory, *directory.iterdir()]}
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield directory
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    view = tmp_path / "read-only-view"
    view.mkdir()
    mount("--bind", str(directory), str(view))
    try:
        mount("-o", "remount,bind,ro", str(view))
        yield view
    finally:
        unmount(view)


def test_a_read_only_directory_is_503_and_health_says_so(
    make_client: MakeClient, tmp_path: Path, passenger: dict
) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    writer = SqliteStore(directory / "predictions.db")
    writer.check()
    writer.close()

    with read_only_view(directory, tmp_path) as view:
        client = make_client(store=SqliteStore(view / "predictions.db"))
        assert_unavailable(client, passenger, 1)

    assert stored_ids(directory / "predictions.db") == []


@pytest.mark.skipif(not IS_ROOT, reason="a full disk is made with a small tmpfs, which needs root")
def test_a_full_disk_is_503_stores_nothing_half_way_and_recovers_when_space_is_freed(
    make_client: MakeClient, tmp_path: Path, passenger: dict
) -> None:
    with small_filesystem(tmp_path / "small", "2m") as directory:
        database = directory / "predictions.db"
        client = make_client(store=SqliteStore(database))
        assert client.post("/predict", json={"id": 1, "observation": passenger}).status_code == 200
        filler = fill(directory)

        assert_unavailable(client, passenger, 2)
        batch = {"observations": [{"id": k, "observation": passenger} for k in range(3, 13)]}
        assert client.post("/predict", json=batch).status_code == 503

        filler.unlink()
        assert client.get("/health").status_code == 200
        assert client.post("/predict", json={"id": 2, "observation": passenger}).status_code == 200
        assert stored_ids(database) == [1, 2]
        stats = client.get("/stats").json()
        assert [v["predictions"] for v in stats["versions"]] == [2]  # the counters of what was stored only
