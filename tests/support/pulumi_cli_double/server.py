"""Serve the double from one long-lived process, so each `pulumi` call costs a connection.

The `pulumi` executable (bin/pulumi) forwards its arguments, environment and working directory
to this server when PULUMI_DOUBLE_SOCKET names its socket, and writes back what the command
prints and its exit status; without the variable it runs the command itself. Both run the same
`cli.run`. The server keeps what the CLI keeps in one process (the passphrase keys it derived,
pkg/secrets/passphrase's cache), which is what makes a test of many CLI calls affordable; every
program still runs in a fresh language host process (host.py).
"""

from __future__ import annotations

import io
import json
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any

from tests.support.pulumi_cli_double.cli import run
from tests.support.pulumi_cli_double.workspace import Invocation


class _FrameStream(io.TextIOBase):
    """A text stream whose writes become frames on the connection."""

    def __init__(self, connection: socket.socket, channel: str, lock: threading.Lock) -> None:
        self._connection = connection
        self._channel = channel
        self._lock = lock

    def write(self, text: str) -> int:
        frame = (json.dumps({self._channel: text}) + "\n").encode()
        with self._lock:
            self._connection.sendall(frame)
        return len(text)

    def isatty(self) -> bool:
        return False


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        request: dict[str, Any] = json.loads(self.rfile.readline())
        lock = threading.Lock()
        invocation = Invocation(
            argv=list(request["argv"]),
            environ=dict(request["env"]),
            cwd=Path(request["cwd"]),
            stdout=_FrameStream(self.connection, "out", lock),
            stderr=_FrameStream(self.connection, "err", lock),
        )
        code = run(invocation)
        with lock:
            self.connection.sendall((json.dumps({"exit": code}) + "\n").encode())


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class DoubleServer:
    """The double, listening on a Unix socket in a background thread."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._server = _Server(str(socket_path), _Handler)
        # A short poll interval: shutdown() waits for the loop to notice, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.socket_path.unlink(missing_ok=True)
