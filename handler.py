"""The AWS Lambda entry point: `handler.handler`.

The app is built once per container, at import (the cold start), and reused by every invocation
the container serves. Mangum turns API Gateway (REST and HTTP APIs), ALB and Function URL events
into ASGI requests; adapters/lambda_events.py answers every other event with a 400 problem
instead of an exception. A cold start that cannot build the app (a bad setting or model) logs
one line naming the variable and the fix, and the function answers 503 until it is redeployed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mangum import Mangum

from adapters.bootstrap import ConfigurationError, create_app, report_configuration_error
from adapters.lambda_events import GuardedHandler, UnavailableHandler
from adapters.settings import Settings

# A Lambda package keeps its model here (scripts/build_lambda_package.py); MODEL_DIR overrides it.
PACKAGED_MODEL_DIR = Path(__file__).resolve().parent / "model"
# Mangum base64-encodes any response whose type is not listed as text; problem details are text.
TEXT_MIME_TYPES = ["text/", "application/json", "application/problem+json"]


def build_handler(environ: Mapping[str, str]) -> Any:
    if "MODEL_DIR" not in environ and (PACKAGED_MODEL_DIR / "manifest.json").is_file():
        environ = {**environ, "MODEL_DIR": str(PACKAGED_MODEL_DIR)}
    try:
        # No /metrics: a scrape would reach one container of many, each counting alone since its
        # cold start; CloudWatch counts the invocations (and prometheus_client costs the cold start 25 ms).
        app = create_app(Settings.from_env(environ), serve_metrics=False)
    except ConfigurationError as e:
        report_configuration_error(e)
        return UnavailableHandler(str(e))
    return GuardedHandler(Mangum(app, lifespan="off", text_mime_types=TEXT_MIME_TYPES))


handler = build_handler(os.environ)
