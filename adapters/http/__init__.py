"""The HTTP adapter: JSON in, problem details out (see app.py for the routes, problems.py for the statuses)."""

from adapters.http.app import build_app

__all__ = ["build_app"]
