"""The ASGI entry point: `uvicorn adapters.asgi:app` (make serve, Procfile)."""

import logging
import os

from uvicorn.config import STARTUP_FAILURE

from adapters.bootstrap import ConfigurationError, create_app, print_cannot_start
from adapters.http.protocol import DeadlineHttpToolsProtocol
from adapters.settings import Settings

# Every request logs a line; a server process needs no thread or process names in its records
# (no formatter here prints them), and gathering them took a fifth of the line's cost.
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False

try:
    settings = Settings.from_env(os.environ)
    app = create_app(settings)
    # uvicorn makes a protocol per connection, from the class alone: its deadline is set here.
    DeadlineHttpToolsProtocol.request_timeout = float(settings.request_timeout)
except ConfigurationError as e:
    # adapters.serve checks the settings before any worker starts; should a worker still fail
    # (the store went away meanwhile), uvicorn's STARTUP_FAILURE stops the server instead of
    # restarting the worker forever.
    print_cannot_start(e)
    raise SystemExit(STARTUP_FAILURE) from None
