"""The AWS Lambda entry point: `handler.handler`.

The app is built once per container, at import (the cold start), and reused by every invocation
the container serves. Mangum turns API Gateway (REST and HTTP APIs), ALB and Function URL events
into ASGI requests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from mangum import Mangum

from adapters.bootstrap import create_app
from adapters.settings import Settings

# Mangum base64-encodes any response whose type is not listed as text; problem details are text.
TEXT_MIME_TYPES = ["text/", "application/json", "application/problem+json"]


def build_handler(environ: Mapping[str, str]) -> Mangum:
    return Mangum(create_app(Settings.from_env(environ)), lifespan="off", text_mime_types=TEXT_MIME_TYPES)


handler = build_handler(os.environ)
