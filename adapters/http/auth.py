"""The optional API key: who may read and update stored predictions."""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers

from adapters.http.errors import InvalidCredentials, MissingCredentials


class ApiKeyGuard:
    """Checks `Authorization: Bearer <key>` or `X-API-Key: <key>`; with no key configured, lets all in."""

    def __init__(self, api_key: str | None) -> None:
        self._key = api_key.encode("ascii") if api_key else None

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def allows(self, headers: Headers) -> bool:
        """True when the request may see what the key protects (no key configured, or the right one)."""
        try:
            self.check(headers)
        except (MissingCredentials, InvalidCredentials):
            return False
        return True

    def check(self, headers: Headers) -> None:
        """Return if the request may pass; raise MissingCredentials or InvalidCredentials if not."""
        if self._key is None:
            return
        presented: list[str] = []
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            presented.append(token.strip())
        if "x-api-key" in headers:
            presented.append(headers["x-api-key"].strip())
        if not presented:
            raise MissingCredentials()
        # Starlette decodes header bytes as latin-1, so this gives back exactly the bytes sent;
        # compare_digest takes time independent of where the first difference is.
        if not any(hmac.compare_digest(p.encode("latin-1"), self._key) for p in presented):
            raise InvalidCredentials()
