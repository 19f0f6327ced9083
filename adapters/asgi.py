"""The ASGI entry point: `uvicorn adapters.asgi:app` (make serve, Procfile)."""

import os

from adapters.bootstrap import create_app
from adapters.settings import Settings

app = create_app(Settings.from_env(os.environ))
