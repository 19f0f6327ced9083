"""What can go wrong with an HTTP request before the core sees it. Data only, no status codes."""

from __future__ import annotations


class HttpError(Exception):
    """Base class of the errors the HTTP adapter raises itself; problems.py maps them to statuses."""


class MalformedRequest(HttpError):
    """The body is not a JSON text this API accepts (syntax, encoding, NaN, nesting, huge numbers)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnsupportedMediaType(HttpError):
    """The body was sent with a Content-Type other than JSON."""

    def __init__(self, content_type: str) -> None:
        self.content_type = content_type
        super().__init__(
            f"the body must be JSON sent with Content-Type: application/json (UTF-8), not {content_type!r}"
        )


class UnsupportedContentEncoding(UnsupportedMediaType):
    """The body was sent compressed (or otherwise encoded); only identity is read."""

    def __init__(self, content_encoding: str) -> None:
        self.content_type = content_encoding
        HttpError.__init__(
            self, f"Content-Encoding {content_encoding!r} is not supported; send the JSON body uncompressed"
        )


class BodyTooLarge(HttpError):
    """The body is (or announces it is) longer than the configured limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the request body is larger than {limit} bytes")


class MissingCredentials(HttpError):
    """The route needs the API key and the request carries none."""

    def __init__(self) -> None:
        super().__init__("this route needs the API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")


class InvalidCredentials(HttpError):
    """The request carries an API key, and it is not the right one."""

    def __init__(self) -> None:
        super().__init__("the API key is not valid")


class RouteNotFound(HttpError):
    """No route has this path."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__("no such route; see /docs for the routes of this API")


class MethodNotAllowed(HttpError):
    """The path exists but not with this method; `allowed` lists the methods it has."""

    def __init__(self, method: str, allowed: str) -> None:
        self.method = method
        self.allowed = allowed
        super().__init__(f"{method} is not allowed here; allowed: {allowed}")
