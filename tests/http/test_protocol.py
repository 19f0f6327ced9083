"""The protocol adapters.serve runs (adapters/http/protocol.py) is uvicorn's, extended at hooks
that must still exist: an upgrade of uvicorn that moves them fails here first, by name.
(tests/reliability/test_slow_clients.py runs the deadline itself against a real server.)"""

from __future__ import annotations

import inspect

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from adapters.http.protocol import HOOKS, DeadlineHttpToolsProtocol


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_the_deadline_extends_is_still_uvicorns_and_is_called_through(hook: str) -> None:
    theirs = getattr(HttpToolsProtocol, hook, None)
    assert callable(theirs), f"uvicorn's HttpToolsProtocol has no {hook} any more: the deadline needs another hook"
    ours = getattr(DeadlineHttpToolsProtocol, hook)
    assert ours is not theirs
    assert inspect.signature(ours).parameters.keys() == inspect.signature(theirs).parameters.keys(), hook
    assert f"super().{hook}(" in inspect.getsource(ours), f"{hook} must call uvicorn's own"


def test_nothing_else_of_uvicorns_protocol_is_replaced() -> None:
    ours = {name for name, value in vars(DeadlineHttpToolsProtocol).items() if callable(value)}
    overridden = {name for name in ours if hasattr(HttpToolsProtocol, name) and not name.startswith("__")}
    assert overridden == set(HOOKS)
    assert not {name for name in ours if name.startswith("_request") or name.endswith("_deadline")} & set(
        dir(HttpToolsProtocol)), "our own names must not shadow uvicorn's"
