"""A function's configuration: its environment variables, read once at cold start, and the retry
configuration of its AWS clients.

It lives in lambdas/common/, which shared/packaging.py copies into every function archive at
the root, next to the function's own files. Standard library only at import: botocore is
imported when a client configuration is first asked for, so a route that calls no AWS service
never pays for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ConfigError(RuntimeError):
    """A required environment variable is missing or invalid: the function cannot start."""


class FunctionEnvironment:
    """The environment variables of one function; every error names the function and the
    variable, so a misconfigured deployment says what to fix in its first log line."""

    def __init__(self, function: str, environ: Mapping[str, str]) -> None:
        self.function = function
        self.environ = environ

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.function} cannot start: {message}")

    def require(self, *names: str) -> None:
        """Fail naming every variable of `names` that is absent or blank."""
        missing = [name for name in names if not self.environ.get(name, "").strip()]
        if missing:
            raise self.error(
                f"missing required environment variable(s) {', '.join(missing)} "
                "(the compute layer sets them on the function)"
            )

    def text(self, name: str) -> str:
        """A required variable, stripped of surrounding whitespace."""
        self.require(name)
        return self.environ[name].strip()

    def optional_list(self, name: str) -> tuple[str, ...]:
        """A comma-separated variable as its non-blank items; absent or blank means none."""
        return tuple(item.strip() for item in self.environ.get(name, "").split(",") if item.strip())

    def positive_int(self, name: str) -> int:
        """A required variable holding a positive whole number (ASCII digits only)."""
        text = self.text(name)
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise self.error(f"{name} must be a positive whole number, got {text!r}")
        return int(text)


def retrying_client_config(
    *, total_max_attempts: int, connect_timeout: float, read_timeout: float
) -> Any:
    """botocore's standard retry mode: capped exponential backoff with jitter on throttling,
    5xx and connection errors, up to `total_max_attempts` in all; a permanent error (access
    denied, a missing object) is raised at once. No hand-written retry loop is needed."""
    from botocore.config import Config  # type: ignore[import-untyped, unused-ignore]

    return Config(
        retries={"mode": "standard", "total_max_attempts": total_max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
