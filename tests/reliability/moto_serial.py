"""moto's DynamoDB server answering one request at a time: `python -m tests.reliability.moto_serial PORT`.

`python -m moto.server` serves requests in threads, and its TransactWriteItems is not safe
across threads: it deep-copies the table before a transaction and, when any part of it is
cancelled (a failed condition, which exact retries and conflicts cause on purpose), puts that copy
back, erasing whatever other threads wrote in between (and the copy itself sometimes fails with
"dictionary changed size during iteration", a 500 of moto's own). DynamoDB does neither. Served one
request at a time (HTTP/1.0, a connection per request), moto's transactions are atomic and
isolated, which is what the reliability checks need from a stand-in for DynamoDB.
"""

from __future__ import annotations

import sys

from moto.moto_server.threaded_moto_server import DomainDispatcherApplication, create_backend_app
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import run_simple


def main(argv: list[str]) -> None:
    port = int(argv[0])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1:])
