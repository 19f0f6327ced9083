"""The ASGI entry point: `uvicorn adapters.asgi:app` (make serve, Procfile)."""

import logging
import os

from adapters.bootstrap import create_app
from adapters.settings import Settings

# Every request logs a line; a server process needs no thread or process names in its records
# (no formatter here prints them), and gathering them took a fifth of the line's cost.
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False

app = create_app(Settings.from_env(os.environ))
