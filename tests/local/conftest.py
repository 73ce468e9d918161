"""One running local environment for the end-to-end tests (starting one takes seconds)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tooling.local.environment import LocalEnvironment, local_environment


@pytest.fixture(scope="module")
def env() -> Iterator[LocalEnvironment]:
    logging.getLogger("botocore").setLevel(logging.WARNING)
    with local_environment(api_port=0, emulator_port=0, retry_delay_seconds=0.05) as running:
        yield running
