"""Load a function from lambdas/ into this process, as Lambda loads it in a fresh environment.

Every function folder is its own archive root with a module named `handler`, and every archive
also carries lambdas/common/*.py at its root (`result_keys`, ...; the function's own file wins on
a name clash, as in shared/packaging.py). So a load puts the folder first on sys.path and
lambdas/common after it, imports, and removes the modules of both from sys.modules again: the
returned module keeps working and another folder can be loaded next. Each handler reads its
configuration from the environment at import, as on Lambda, so the function's environment is
applied for the import.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from shared.packaging import COMMON_FOLDER, LAMBDAS_DIR


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools and the handlers read."""

    function_name: str
    invoked_function_arn: str
    log_group_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    log_stream_name: str = "local"
    timeout_seconds: float = 30.0
    _started: float = field(default_factory=time.monotonic, repr=False)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


@contextmanager
def temporary_environment(
    variables: Mapping[str, str], remove: tuple[str, ...] = ()
) -> Iterator[None]:
    """Set `variables` and unset `remove` in os.environ for the block, then restore both."""
    saved = {name: os.environ.get(name) for name in (*variables, *remove)}
    for name in remove:
        os.environ.pop(name, None)
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_handler(
    function: str, environment: Mapping[str, str], lambdas_dir: Path = LAMBDAS_DIR
) -> ModuleType:
    """Import lambdas/<function>/handler.py fresh, with `environment` set while it imports."""
    # In archive order: the function's own files shadow lambdas/common's.
    roots = [str(lambdas_dir / function), str(lambdas_dir / COMMON_FOLDER)]
    archive_modules = {path.stem for root in roots for path in Path(root).glob("*.py")}
    _forget(archive_modules)
    sys.path[:0] = roots
    try:
        with temporary_environment(environment):
            return importlib.import_module("handler")
    finally:
        for root in roots:
            sys.path.remove(root)
        _forget(archive_modules)


def _forget(names: set[str]) -> None:
    for name in names:
        sys.modules.pop(name, None)
