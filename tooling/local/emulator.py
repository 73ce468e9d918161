"""moto as a server on 127.0.0.1, started and stopped cleanly, with a clear busy-port error."""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
DEFAULT_EMULATOR_PORT = 4566
DEFAULT_EMULATOR_URL = f"http://{LOOPBACK}:{DEFAULT_EMULATOR_PORT}"
# The AWS services the five layers use: the provider endpoints the local target overrides.
EMULATED_SERVICES = (
    "apigateway", "cloudwatch", "dynamodb", "iam", "kms", "lambda", "logs", "s3",
    "secretsmanager", "sns", "sqs", "sts", "wafv2",
)  # fmt: skip
# moto's default account and region: every name the layers derive is built for these.
EMULATOR_ACCOUNT_ID = "123456789012"
EMULATOR_REGION = "us-east-1"

# Dummy credentials for the emulator; moto accepts any. They are not secrets.
EMULATOR_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": EMULATOR_REGION,
    "AWS_REGION": EMULATOR_REGION,
}


class PortInUseError(RuntimeError):
    """The requested port is taken; the message says which and what to do."""


def emulator_answers(url: str, timeout_seconds: float = 1.0) -> bool:
    """True when something accepts TCP connections at the emulator URL's host and port."""
    parsed = urlsplit(url)
    try:
        with socket.create_connection(
            (parsed.hostname or LOOPBACK, parsed.port or 80), timeout=timeout_seconds
        ):
            return True
    except OSError:
        return False


def ensure_port_free(port: int, what: str, option: str) -> None:
    """Raise PortInUseError naming the port and the option that changes it, when taken."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The servers set SO_REUSEADDR too: a port whose old connections linger is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
            probe.listen()
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise PortInUseError(
                f"Port {port} on {LOOPBACK} is already in use, so the {what} cannot start. "
                f"Stop whatever listens there (`ss -ltnp 'sport = :{port}'` shows it) or choose "
                f"another port with {option} <port>."
            ) from None


@dataclass(frozen=True)
class RunningEmulator:
    endpoint_url: str
    port: int


@contextmanager
def moto_server(port: int = DEFAULT_EMULATOR_PORT) -> Iterator[RunningEmulator]:
    """A moto server on 127.0.0.1:`port` (0 picks a free one) for the `with` block.

    Served the way moto's ThreadedMotoServer serves it (moto's WSGI application and request
    handler on werkzeug's threaded server), but with the server object in hand: moto's stop()
    ends the serving thread and leaves the listening socket open, so the socket is closed here.
    """
    # Imported here so that reading this module's constants (the orchestrator does) stays cheap.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    ensure_port_free(port, "AWS emulator", "--emulator-port")
    # Attaching AWS-managed policies fails without them; moto reads this at start-up.
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    # One line per request from werkzeug would drown the environment's own output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(
        LOOPBACK,
        port,
        DomainDispatcherApplication(create_backend_app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    thread = threading.Thread(target=server.serve_forever, name="local-emulator", daemon=True)
    thread.start()
    try:
        bound_port = int(server.server_address[1])
        endpoint_url = f"http://{LOOPBACK}:{bound_port}"
        # moto keeps its state in this process's memory, shared by every server and mock in
        # it: start from nothing, whatever ran before.
        reset = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(reset, timeout=10):  # noqa: S310 (loopback, built here)
            pass
        yield RunningEmulator(endpoint_url=endpoint_url, port=bound_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
