"""`nox -s local -- --smoke` (the verify journey) end to end, a busy port, a clean shutdown."""

from __future__ import annotations

import io
import socket
import threading

import pytest
from rich.console import Console

from tooling.local.__main__ import main
from tooling.local.emulator import PortInUseError
from tooling.local.environment import local_environment


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As every server does: connections the server closed may linger in TIME_WAIT.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
        return True


def test_smoke_run_passes_and_leaves_no_thread_or_port_behind() -> None:
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    output = io.StringIO()
    code = main(
        ["--smoke", "--api-port", str(ports[0]), "--emulator-port", str(ports[1])],
        console=Console(file=output, width=200),
    )
    text = output.getvalue()
    assert code == 0, text
    # The verify journey: every step but the WAF (not emulated) passes or only warns.
    assert "0 fail" in text and "1 skip" in text, text
    for step in ("GET /health", "upload processed", "alarms", "secret rotation", "clean up"):
        assert step in text
    assert all(_free(port) for port in ports), "a port is still bound after shutdown"
    left = [t.name for t in threading.enumerate() if t.name.startswith("local-")]
    assert left == []


def test_a_busy_port_is_named_with_the_option_to_change_it() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(PortInUseError) as raised,
            local_environment(api_port=port, emulator_port=0),
        ):
            pass
        message = str(raised.value)
        assert f"Port {port} on 127.0.0.1 is already in use" in message
        assert "--api-port" in message
        output = io.StringIO()
        assert main(["--emulator-port", str(port)], console=Console(file=output, width=300)) == 2
        assert "--emulator-port" in output.getvalue()
